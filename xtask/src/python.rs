//! The Python the tests use for independent third-party checks: `aiosmtpd` (a real SMTP
//! server), `dkimpy` (a DKIM verifier that is not Herald's code), `PyNaCl` (dkimpy's
//! Ed25519), `standardwebhooks` (an independent Standard Webhooks verifier) and
//! `schemathesis` (a fuzzer that checks the server against its OpenAPI document). The first
//! three come from Debian packages (installed when missing); the last two from PyPI into a
//! virtual environment under `target/test-python` that also sees the system packages.
//! Its interpreter reaches the tests as `HERALD_TEST_PYTHON`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The variable the tests read.
pub const PYTHON_VAR: &str = "HERALD_TEST_PYTHON";

const SYSTEM_MODULES: &str = "import aiosmtpd, dkim, nacl";
const ALL_MODULES: &str = "import aiosmtpd, dkim, nacl, standardwebhooks, schemathesis";
const PACKAGES: [&str; 5] = ["python3", "python3-aiosmtpd", "python3-dkim", "python3-nacl", "python3-venv"];
// schemathesis pinned: the test passes it command-line flags, which its releases rename.
const PYPI: [&str; 2] = ["standardwebhooks", "schemathesis==4.32.5"];

fn imports(python: &Path, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", modules])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A system interpreter with the Debian packages' modules, installing them if need be.
fn system_python() -> Result<PathBuf> {
    // Debian's interpreter first: its packages are the ones installed below.
    let candidates = || {
        let mut found = vec![PathBuf::from("/usr/bin/python3")];
        found.extend(crate::pg::find_on_path("python3"));
        found
    };
    if let Some(python) = candidates().into_iter().find(|p| imports(p, SYSTEM_MODULES)) {
        return Ok(python);
    }
    eprintln!("xtask: no python3 with aiosmtpd, dkimpy and PyNaCl; installing {}", PACKAGES.join(" "));
    crate::pg::apt_install(&PACKAGES, "no python3 with aiosmtpd, dkimpy and PyNaCl (used by the email tests)")?;
    match candidates().into_iter().find(|p| imports(p, SYSTEM_MODULES)) {
        Some(python) => Ok(python),
        None => bail!("installed {} but no python3 can import them", PACKAGES.join(" ")),
    }
}

fn run(command: &mut Command) -> Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command.status().with_context(|| format!("could not run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// The test interpreter (the virtual environment's), made and filled if need be.
pub fn ensure(target: &Path) -> Result<PathBuf> {
    let venv = target.join("test-python");
    let python = venv.join("bin").join("python3");
    if imports(&python, ALL_MODULES) {
        return Ok(python);
    }
    let system = system_python()?;
    if !python.exists() {
        if !imports(&system, "import venv, ensurepip") {
            crate::pg::apt_install(&["python3-venv"], "python3 cannot make virtual environments")?;
        }
        run(Command::new(&system).args(["-m", "venv", "--system-site-packages"]).arg(&venv))?;
    }
    run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(PYPI))?;
    if !imports(&python, ALL_MODULES) {
        bail!("{} cannot import the test modules after installing them", python.display());
    }
    Ok(python)
}
