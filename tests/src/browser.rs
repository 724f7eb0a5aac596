//! A real headless Chromium driven through chromedriver (W3C WebDriver over HTTP), for the web
//! console's tests (docs/console.md).
//!
//! The WebDriver protocol is plain JSON over HTTP, so this is a small client on the `reqwest`
//! the harness already uses rather than another dependency tree. Each [`Browser`] starts its own
//! chromedriver on a free loopback port and a Chromium with a fresh profile directory, and ends
//! both when dropped. Nothing is skipped: without Debian's `chromium` and `chromium-driver`
//! [`Browser::start`] fails with a message saying how to install them.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C key under which an element reference is returned.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian installs the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a `wait_*` helper polls before failing the test.
pub const UI_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    profile: PathBuf,
}

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: the console tests need a real Chromium. Install Debian's packages with \
         `apt-get update && apt-get install -y chromium chromium-driver` (infra/scripts/test.sh does this) \
         — package {package}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a `width` × `height` window.
    pub async fn start(width: u32, height: u32) -> Self {
        require(CHROMIUM, "chromium");
        require(CHROMEDRIVER, "chromium-driver");
        let port = free_port();
        let profile = std::env::temp_dir().join(format!("puck-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{CHROMEDRIVER} did not start: {e}"))
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok();
            if let Some(resp) = ready {
                let v: Value = resp.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver on port {port} did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("--user-data-dir={}", profile.display()), format!("--window-size={width},{height}")])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let resp: Value =
            http.post(format!("{base}/session")).json(&caps).send().await.expect("new session").json().await.unwrap();
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {resp}"))
            .to_owned();
        Self { http, session: format!("{base}/session/{session}"), driver, profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!("{}: {}", v["value"]["error"], v["value"]["message"]))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await.unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args})).await
    }

    /// The `textContent` of the first element matching `css`, if any.
    pub async fn text(&self, css: &str) -> Option<String> {
        self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", json!([css]))
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// The visible text of the whole page.
    pub async fn page_text(&self) -> String {
        self.js("return document.body.innerText;", json!([])).await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until an element matches `css`.
    pub async fn wait_for(&self, css: &str) {
        self.wait_text(css, "").await;
    }

    /// Waits until the first element matching `css` has a text containing `needle`; returns it.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            let text = self.text(css).await;
            if let Some(t) = &text {
                if t.contains(needle) {
                    return t.clone();
                }
            }
            if Instant::now() > deadline {
                let page = self.page_text().await;
                panic!("timed out waiting for {css} to contain {needle:?} (now {text:?}); page:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            let found = self
                .call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
                .await;
            if let Ok(v) = found {
                return v[ELEMENT_KEY].as_str().expect("element reference").to_owned();
            }
            assert!(Instant::now() < deadline, "no element matches {css}; page:\n{}", self.page_text().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `css` (waiting for it), as a user would.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            let id = self.element(css).await;
            match self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await {
                Ok(_) => return,
                // Re-rendered between find and click: find it again.
                Err(e)
                    if Instant::now() < deadline
                        && (e.contains("stale") || e.contains("not interactable") || e.contains("intercepted")) =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Clicks the first button whose text is exactly `text`.
    pub async fn click_button(&self, text: &str) {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            let clicked = self
                .js("const b = [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === arguments[0] && !b.disabled); if (b) b.click(); return !!b;", json!([text]))
                .await;
            if clicked == true {
                return;
            }
            assert!(Instant::now() < deadline, "no button {text:?}; page:\n{}", self.page_text().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the field matching `css` (cleared first) with real key events.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({"text": text})).await;
    }

    /// Sends one key press (e.g. `"\u{E004}"` Tab) to the focused element.
    pub async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]});
        self.post("/actions", actions).await;
    }

    pub async fn title(&self) -> String {
        self.call(reqwest::Method::GET, "/title", None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height})).await;
    }

    /// Emulates `prefers-color-scheme` (Chrome DevTools Protocol through chromedriver).
    pub async fn color_scheme(&self, scheme: &str) {
        let params = json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]});
        self.post("/goog/cdp/execute", json!({"cmd": "Emulation.setEmulatedMedia", "params": params})).await;
    }

    /// Writes a PNG of the viewport to `target/console-screenshots/<name>.png` and returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await.expect("screenshot");
        let png =
            base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or_default()).expect("base64 png");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (closing Chromium) and chromedriver.
    pub async fn quit(mut self) {
        let _ = self.call(reqwest::Method::DELETE, "", None).await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        // chromedriver runs in its own process group with the browser it started: end them all.
        let _ = Command::new("kill").arg("--").arg(format!("-{}", self.driver.id())).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if matches!(self.driver.try_wait(), Ok(None)) {
            self.stop_driver();
        }
    }
}

/// `target/console-screenshots` (or under `CARGO_TARGET_DIR`): written by the tests, never committed.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| puck_local::moto::repo_root().join("target"));
    target.join("console-screenshots")
}
