//! A real browser for the pages' tests: Debian's chromium, headless, driven by
//! its chromedriver over WebDriver (fantoccini). Both are installed with
//! apt-get when missing and the tests run as root; otherwise a test fails
//! naming the packages to install.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs chromium and chromedriver once per test binary when missing.
fn ensure_installed() {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    assert!(
        root,
        "the browser tests need Debian's chromium and chromium-driver: run `apt-get install chromium chromium-driver` as root"
    );
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    if !install() {
        // The package lists may be missing or old on a fresh machine.
        let updated = Command::new("apt-get").arg("update").status();
        assert!(
            updated.is_ok_and(|status| status.success()) && install(),
            "apt-get could not install chromium and chromium-driver; install them and run the tests again"
        );
    }
}

/// A chromedriver process and a browser session on it; both end when dropped.
pub struct Browser {
    pub client: Client,
    /// Held for its drop, which ends chromedriver after the session.
    _driver: Driver,
    shots: PathBuf,
}

/// chromedriver and every browser process it started, killed when dropped,
/// whether the test passed or panicked.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

impl Browser {
    pub async fn start() -> Browser {
        ensure_installed();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A process group of its own: the browser it starts goes with it.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver(driver);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1100,1500"],
            }),
        );
        // chromedriver is on loopback: plain HTTP, no TLS.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            _driver: driver,
            shots,
        }
    }

    /// Saves what the browser shows as `screenshots/NAME.png` in the test
    /// target directory, and returns where.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The text of the first element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
            .text()
            .await
            .unwrap()
    }

    /// Waits until `css` selects something, for up to `within`.
    pub async fn wait_for(&self, css: &str, within: Duration) {
        self.client
            .wait()
            .at_most(within)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} within {within:?}: {error}"));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} to click: {error}"))
            .click()
            .await
            .unwrap();
    }

    /// Ends the session; the driver and the browser go when `self` drops.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
