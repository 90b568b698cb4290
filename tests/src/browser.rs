//! A real headless Chromium driven through ChromeDriver (WebDriver): start it, find and click elements, wait on page state, take screenshots.

use crate::tool;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a page may take to reach a state the test waits for.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(30);
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(50);

/// ChromeDriver (`CHROMEDRIVER`) with one headless Chromium (`CHROMIUM`) session.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    /// Where screenshots go.
    pub out_dir: PathBuf,
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a session at `width`×`height`; screenshots go to `out_dir`.
    pub async fn start(out_dir: &Path, width: u32, height: u32) -> Self {
        let mut driver = Command::new(tool("CHROMEDRIVER"))
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chromedriver");
        let port = driver_port(&mut driver);
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tool("CHROMIUM"),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no Chromium session through chromedriver: {e}"));
        std::fs::create_dir_all(out_dir).expect("screenshot dir");
        Self { client, driver, _profile: profile, out_dir: out_dir.to_owned() }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns a truthy value; panics with `what` after [`PAGE_DEADLINE`].
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            let v = self.js(script, args.clone()).await;
            let truthy = !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let banner = self.text_of("[data-testid=error-banner]").await;
                panic!("timed out after {PAGE_DEADLINE:?} waiting for {what} (error banner: {banner:?})");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until an element matches `css` and returns it.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_js(
            &format!("an element {css}"),
            "return document.querySelector(arguments[0]) !== null;",
            vec![json!(css)],
        )
        .await;
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> u64 {
        self.js("return document.querySelectorAll(arguments[0]).length;", vec![json!(css)]).await.as_u64().unwrap_or(0)
    }

    /// Waits until exactly `n` elements match `css`.
    pub async fn wait_count(&self, css: &str, n: u64) {
        self.wait_js(
            &format!("{n} elements {css}"),
            "return document.querySelectorAll(arguments[0]).length === arguments[1];",
            vec![json!(css), json!(n)],
        )
        .await;
    }

    /// The text of the first element matching `css`, if any.
    pub async fn text_of(&self, css: &str) -> Option<String> {
        self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", vec![json!(css)])
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// Clicks the element matching `css` (waiting for it first).
    pub async fn click(&self, css: &str) {
        let e = self.wait_for(css).await;
        e.click().await.unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    /// Waits until page `page` (the `data-page` of `main#page`) has rendered its first data.
    pub async fn wait_page(&self, page: &str) {
        self.wait_for(&format!("main#page[data-page=\"{page}\"][data-ready=\"true\"]")).await;
    }

    /// Saves a PNG of the window as `out_dir/name.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = self.out_dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Resizes the window (the viewport follows in headless mode).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap_or_else(|e| panic!("resize: {e}"));
    }

    /// Ends the session; ChromeDriver stops when the browser is dropped.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Also when a test fails half-way: ChromeDriver (and its Chromium) must not outlive it.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Reads ChromeDriver's stdout until it says which port it chose.
fn driver_port(driver: &mut Child) -> u16 {
    let stdout = driver.stdout.take().expect("chromedriver stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>().ok());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(port)) => port,
        other => {
            let _ = driver.kill();
            panic!("chromedriver did not report its port: {other:?}");
        }
    }
}
