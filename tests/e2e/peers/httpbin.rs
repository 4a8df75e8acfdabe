//! httpbin (PyPI) under gunicorn, from the virtualenv `tests/peers/.venv`: an upstream API that
//! echoes what it was sent (`/headers`, `/anything`, `/bearer`), reflects values into response
//! headers, redirects anywhere (`/redirect-to`) and answers slowly or with any status on demand.

use std::time::{Duration, Instant};

use super::{Process, peers_dir, require};

/// A running httpbin on 127.0.0.1; gunicorn is killed when this is dropped.
pub struct Httpbin {
    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub base: String,
    child: Process,
}

/// Starts httpbin on a free port and waits until `GET /get` answers 200.
pub async fn start() -> Httpbin {
    let gunicorn = require(".venv/bin/gunicorn", "gunicorn (tests/peers/.venv)");
    require_httpbin_module();
    let gunicorn = gunicorn.display().to_string();
    // Port 0: gunicorn binds a free port itself and names it, so no other process can take it
    // between a choice made here and gunicorn's bind. Threads let a `/delay/N` call run beside
    // others; without a control socket, instances do not fight over its one default path.
    let mut child = Process::spawn(
        "httpbin",
        &gunicorn,
        &[
            "--bind",
            "127.0.0.1:0",
            "--threads",
            "8",
            "--no-control-socket",
            "httpbin:app",
        ],
        &[],
    );

    // Gunicorn logs to stderr: `[…] [INFO] Listening at: http://127.0.0.1:PORT (PID)`.
    let stderr = child.dir().join("stderr");
    let base = child
        .wait_for(Duration::from_secs(30), |_| {
            let log = std::fs::read_to_string(&stderr).ok()?;
            listening_at(&log)
        })
        .await;
    let mut httpbin = Httpbin { base, child };
    httpbin.wait_until_get_answers().await;
    httpbin
}

/// Panics, naming the fix, unless the virtualenv holds the `httpbin` package (gunicorn alone
/// would start and then fail to import the app).
fn require_httpbin_module() {
    let lib = peers_dir().join(".venv/lib");
    let installed = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .any(|python| {
            python
                .path()
                .join("site-packages/httpbin/__init__.py")
                .is_file()
        });
    assert!(
        installed,
        "httpbin is missing (no site-packages/httpbin under {}): run `bash tests/setup` to \
         install the test peers",
        lib.display()
    );
}

/// The base URL from gunicorn's `Listening at:` line, without a trailing slash.
fn listening_at(log: &str) -> Option<String> {
    let rest = log
        .lines()
        .find_map(|line| line.split_once("Listening at: "))?
        .1;
    let url = rest.split_whitespace().next()?;
    Some(url.trim_end_matches('/').to_owned())
}

impl Httpbin {
    /// `base` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What gunicorn and httpbin wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.child.stderr()
    }

    /// Gunicorn names its port before its worker has loaded the app: poll until it serves.
    async fn wait_until_get_answers(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = http.get(self.url("/get")).send().await
                && response.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.child.try_wait() {
                panic!(
                    "httpbin exited ({status}) before it served GET /get (run `bash tests/setup` \
                     if it could not import httpbin):\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "httpbin did not answer GET /get at {} within 30 s:\n{}",
                self.base,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
