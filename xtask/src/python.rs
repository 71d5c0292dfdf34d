//! The Python the tests use for independent third-party checks: `aiosmtpd` (a real SMTP
//! server), `dkimpy` (a DKIM verifier that is not Herald's code) and `PyNaCl` (dkimpy's
//! Ed25519). Finds an interpreter that has them, installing Debian's packages when none does,
//! and hands it to the tests as `HERALD_TEST_PYTHON`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

/// The variable the tests read.
pub const PYTHON_VAR: &str = "HERALD_TEST_PYTHON";

const MODULES: &str = "import aiosmtpd, dkim, nacl";
const PACKAGES: [&str; 4] = ["python3", "python3-aiosmtpd", "python3-dkim", "python3-nacl"];

fn candidates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::env::var_os(PYTHON_VAR).map(PathBuf::from).into_iter().collect();
    // Debian's interpreter first: its packages are the ones installed below.
    found.push(PathBuf::from("/usr/bin/python3"));
    found.extend(crate::pg::find_on_path("python3"));
    found
}

fn has_modules(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", MODULES])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An interpreter with the test modules, installed if need be.
pub fn ensure() -> Result<PathBuf> {
    if let Some(python) = candidates().into_iter().find(has_modules) {
        return Ok(python);
    }
    eprintln!("xtask: no python3 with aiosmtpd, dkimpy and PyNaCl; installing {}", PACKAGES.join(" "));
    crate::pg::apt_install(&PACKAGES, "no python3 with aiosmtpd, dkimpy and PyNaCl (used by the email tests)")?;
    match candidates().into_iter().find(has_modules) {
        Some(python) => Ok(python),
        None => bail!("installed {} but no python3 can import them", PACKAGES.join(" ")),
    }
}
