//! Real servers on loopback for tests: an SMTP sink (Python's `aiosmtpd`), a DNS server
//! (`hickory-server`, in process) and an independent DKIM verifier (Python's `dkimpy`).
//! `cargo xtask test` installs the Python packages and sets `HERALD_TEST_PYTHON`.

pub mod dns;
pub mod smtp;

/// The Python interpreter that has `aiosmtpd` and `dkimpy`: `HERALD_TEST_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("HERALD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}
