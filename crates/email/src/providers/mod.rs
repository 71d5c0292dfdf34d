//! The pieces of email providers' HTTP APIs that need no network or storage: AWS SigV4
//! request signing (Amazon SES) and SNS message signature verification (SES notifications).

pub mod sigv4;
pub mod sns;
