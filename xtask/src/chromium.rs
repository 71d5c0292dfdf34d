//! The browser the web UI tests drive: Debian's `chromium` and `chromium-driver` (installed
//! when missing). The driver's path reaches the tests as `HERALD_TEST_CHROMEDRIVER`; the
//! tests start it themselves on a free loopback port.

use std::path::PathBuf;

use anyhow::{Result, bail};

/// The variable the tests read.
pub const DRIVER_VAR: &str = "HERALD_TEST_CHROMEDRIVER";

const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

fn found() -> Option<PathBuf> {
    let browser = crate::pg::find_on_path("chromium")?;
    let driver = crate::pg::find_on_path("chromedriver")?;
    browser.exists().then_some(driver)
}

/// The chromedriver path, installing Debian's packages when it or the browser is missing.
pub fn ensure() -> Result<PathBuf> {
    if let Some(driver) = found() {
        return Ok(driver);
    }
    eprintln!("xtask: no chromium and chromedriver; installing {}", PACKAGES.join(" "));
    crate::pg::apt_install(&PACKAGES, "no chromium and chromedriver (used by the web UI tests)")?;
    match found() {
        Some(driver) => Ok(driver),
        None => bail!("installed {} but chromium or chromedriver is still not on PATH", PACKAGES.join(" ")),
    }
}
