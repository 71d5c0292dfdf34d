//! Herald's email delivery parts, free of storage: DKIM keys and signing, MIME composition,
//! the SMTP client, email providers' request signing and notification signatures, the DNS records
//! a sending domain publishes and their verification, and the reports (bounces, complaints)
//! that come back.

pub mod dkim;
pub mod dns;
pub mod message;
pub mod providers;
pub mod report;
pub mod smtp;
#[cfg(feature = "test-support")]
pub mod testing;

pub use message::EmailError;
