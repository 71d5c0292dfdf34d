//! Herald's email delivery parts, free of storage: DKIM keys and signing, MIME composition,
//! the SMTP client, email providers' request signing and notification signatures, and the DNS records a sending domain publishes and their verification.

pub mod dkim;
pub mod dns;
pub mod message;
pub mod providers;
pub mod smtp;
#[cfg(feature = "test-support")]
pub mod testing;

pub use message::EmailError;
