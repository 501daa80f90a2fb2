//! A real browser for the web console's tests: Debian's headless Chromium driven through
//! ChromeDriver (WebDriver) by fantoccini. `scripts/test` installs both when they are missing;
//! a test run without them stops with a message saying how, rather than skipping.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A ChromeDriver of this test's own, on a free port; stopped when dropped.
#[derive(Debug)]
pub struct Driver {
    process: tokio::process::Child,
    port: u16,
}

/// A browser window's size: an office screen, or a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Desktop,
    Phone,
}

impl Screen {
    fn size(self) -> (u32, u32) {
        match self {
            Screen::Desktop => (1280, 900),
            Screen::Phone => (360, 740),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Screen::Desktop => "desktop",
            Screen::Phone => "phone",
        }
    }
}

fn missing() -> ! {
    panic!(
        "the browser tests need Chromium and ChromeDriver: install Debian's chromium and \
         chromium-driver (sudo apt-get install chromium chromium-driver; scripts/test does it \
         when it can), or set HOMEWARD_TEST_CHROMEDRIVER to a chromedriver matching your Chromium"
    )
}

impl Driver {
    pub async fn start() -> Self {
        let program =
            std::env::var("HOMEWARD_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("an address").port()
        };
        let process = tokio::process::Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|_| missing());
        // Ready once it answers its status.
        let status = format!("http://127.0.0.1:{port}/status");
        for _ in 0..100 {
            if let Ok(r) = reqwest::get(&status).await {
                if r.status().is_success() {
                    return Self { process, port };
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        missing()
    }

    /// A new browser, its window `screen`'s size, asking for pages in `language`.
    pub async fn browser(&self, screen: Screen, language: &str) -> Client {
        let (width, height) = screen.size();
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                format!("--window-size={width},{height}"),
                format!("--lang={language}"),
            ],
            "prefs": { "intl.accept_languages": language },
        });
        if screen == Screen::Phone {
            // A headless window is never narrower than 500 px: a phone's viewport is emulated.
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true },
            });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        // Plain HTTP to a driver on this machine: no TLS.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("ChromeDriver did not start a browser: {e}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}

/// Where screenshots go, for a person to look at: `target/console-screenshots/` (the target
/// folder the test binary runs from, `target/debug/deps/`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// Saves what the browser shows now as `<name>.png`.
pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png)
        .expect("a written screenshot");
}

/// axe-core's serious and critical violations on the page shown now (none is the aim): each
/// as `rule: what it says (where)`.
pub async fn accessibility_violations(client: &Client) -> Vec<String> {
    const AXE: &str = include_str!("../assets/axe.min.js");
    client
        .execute(AXE, vec![])
        .await
        .expect("axe-core loads in the page");
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations))
               .catch(e => done([{ id: 'axe-failed', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    result
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| {
            let targets: Vec<String> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| n["target"].to_string())
                .collect();
            format!(
                "{}: {} ({})",
                v["id"].as_str().unwrap_or_default(),
                v["help"].as_str().unwrap_or_default(),
                targets.join(", ")
            )
        })
        .collect()
}

/// The text of the element `css`.
pub async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .expect("its text")
}

/// Milliseconds from the navigation's start to DOMContentLoaded, as the browser measured it.
pub async fn dom_content_loaded_ms(client: &Client) -> f64 {
    let value: Value = client
        .execute(
            "const [n] = performance.getEntriesByType('navigation');
             return n.domContentLoadedEventEnd - n.startTime;",
            vec![],
        )
        .await
        .expect("the navigation's timing");
    value.as_f64().expect("a number")
}
