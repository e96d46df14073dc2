//! Headless Chromium, driven over the DevTools protocol: opens a page, records its console
//! errors and network requests, evaluates script in it and takes screenshots.
//!
//! Chromium is Debian's `chromium` (installed by `scripts/bootstrap.sh`), or `MIYABI_CHROMIUM`.
//! It runs with `--headless --no-sandbox` (it refuses to start as root otherwise) and a profile
//! of its own, removed when the page is dropped. A missing browser fails the test: it never skips.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(60);

/// One page of a headless Chromium of its own, driven over `--remote-debugging-pipe`: the
/// protocol's JSON messages, each ended by a NUL byte, on the browser's file descriptors 3 (in)
/// and 4 (out), which a shell wires to the child's stdin and stdout.
pub struct Page {
    browser: Child,
    profile: PathBuf,
    commands: ChildStdin,
    messages: mpsc::Receiver<Vec<u8>>,
    session: String,
    next_id: u64,
    /// Every event of the page's session, in order.
    pub events: Vec<Value>,
}

impl Page {
    /// Starts Chromium and opens `file` in a page; returns once the page's load event fired.
    pub fn open(file: &Path) -> Self {
        let binary = std::env::var("MIYABI_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = std::env::temp_dir().join(format!("miyabi-chromium-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&profile).expect("a profile folder");
        let log = std::fs::File::create(profile.join("stderr.log")).expect("a log file");
        let mut browser = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                "--window-size=1280,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} does not start ({e})"));
        let commands = browser.stdin.take().expect("stdin piped");
        let output = browser.stdout.take().expect("stdout piped");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut output = BufReader::new(output);
            loop {
                let mut message = Vec::new();
                match output.read_until(0, &mut message) {
                    Ok(n) if n > 0 && message.last() == Some(&0) => {
                        message.pop();
                        if tx.send(message).is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
        let mut page = Self {
            browser,
            profile,
            commands,
            messages,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
        };
        let target = page.call("Target.createTarget", json!({"url": "about:blank"}))["targetId"].clone();
        page.session = page.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}))["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            page.call(&format!("{domain}.enable"), json!({}));
        }
        let url = format!("file://{}", file.canonicalize().expect("the page exists").display());
        page.call("Page.navigate", json!({"url": url}));
        page.wait_for("Page.loadEventFired");
        page
    }

    /// Sends `method` (to the page's session once attached) and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        if let Err(e) = self.commands.write_all(&bytes).and_then(|()| self.commands.flush()) {
            panic!("send to DevTools: {e}; {}", self.browser_log());
        }
        loop {
            let reply = self.next_message();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {}", reply["error"]);
                return reply["result"].clone();
            }
        }
    }

    fn next_message(&mut self) -> Value {
        let message = match self.messages.recv_timeout(TIMEOUT) {
            Ok(message) => message,
            Err(e) => panic!("no DevTools message within {TIMEOUT:?} ({e}); {}", self.browser_log()),
        };
        let value: Value = serde_json::from_slice(&message).expect("DevTools JSON");
        if value.get("method").is_some() {
            self.events.push(value.clone());
        }
        value
    }

    /// The end of what the browser wrote on stderr, for failures.
    fn browser_log(&self) -> String {
        let log = std::fs::read_to_string(self.profile.join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("the browser's stderr ends with:\n{}", tail.join("\n"))
    }

    /// Reads messages until an event `method` of the page's session arrives.
    pub fn wait_for(&mut self, method: &str) {
        let seen = |events: &[Value]| events.iter().any(|e| e["method"] == method);
        let deadline = Instant::now() + TIMEOUT;
        while !seen(&self.events) {
            assert!(Instant::now() < deadline, "no {method} within {TIMEOUT:?}");
            self.next_message();
        }
    }

    /// The value of `expression`, evaluated in the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Console errors, uncaught exceptions and error log entries, as text.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
                    || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
            })
            .map(Value::to_string)
            .collect()
    }

    /// The URL of every request the page made.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    /// Saves a PNG of the whole page as `path`; returns its bytes.
    pub fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("image data"))
            .expect("base64");
        std::fs::write(path, &png).expect("screenshot written");
        png
    }
}

impl Drop for Page {
    /// Closes the browser the way it expects (a killed one leaves helper processes writing
    /// into the profile), kills it if it lingers, then removes the profile.
    fn drop(&mut self) {
        let _ = self.commands.write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.browser.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.browser.kill();
        let _ = self.browser.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
