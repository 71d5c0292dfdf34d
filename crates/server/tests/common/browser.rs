//! A real Chromium driven through `chromedriver` by fantoccini: the driver on a free port (its
//! browsers stopped with it), a headless session, and the few steps tests take on a page.
//! `cargo xtask test` installs the browser and sets `HERALD_TEST_CHROMEDRIVER`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// A chromedriver on a free loopback port, stopped on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    /// Stops chromedriver with the browsers it started (its process group), also when a test
    /// panicked before closing its session.
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

pub async fn start_driver() -> Driver {
    let path = std::env::var("HERALD_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
    let port = free_port();
    let child = Command::new(&path)
        // A group of its own, which its browsers join: see `Drop for Driver`.
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {path} ({e}): run `cargo xtask test`, which installs chromium and chromium-driver")
        });
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{}/status", driver.url)).send().await.is_ok_and(|r| r.status().is_success()) {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on port {port}");
}

pub async fn browser(driver: &Driver) -> Client {
    let mut options = json!({"args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"
    ]});
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The element `css` selects, waited for: a form submitted by the last click may still be
/// loading the page that has it.
pub async fn element(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// The text of the element `css` selects. An element found on a page that a submitted form
/// then replaced is stale: it is looked up again on the new page.
pub async fn text(client: &Client, css: &str) -> String {
    for _ in 0..20 {
        match element(client, css).await.text().await {
            Ok(text) => return text,
            // Chromium reports some stale elements as an "unknown error" from its inspector.
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                    || e.message.contains("does not belong to the document") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("text of {css}: {e}"),
        }
    }
    panic!("{css} kept going stale")
}

pub async fn fill(client: &Client, css: &str, value: &str) {
    let field = element(client, css).await;
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

pub async fn click(client: &Client, css: &str) {
    element(client, css).await.click().await.expect("click");
}

pub async fn select(client: &Client, css: &str, value: &str) {
    element(client, css).await.select_by_value(value).await.expect("select");
}

pub async fn path(client: &Client) -> String {
    let url = client.current_url().await.expect("url");
    url.path().to_owned()
}

/// Saves a screenshot to docs/screenshots/NAME.png when HERALD_SCREENSHOTS=1.
pub async fn screenshot(client: &Client, enabled: bool, name: &str) {
    if !enabled {
        return;
    }
    let png = client.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}
