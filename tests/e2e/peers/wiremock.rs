//! WireMock's standalone server (the jar bundled by the `wiremock` npm package, run on the
//! machine's Java): answers with exactly the status, content type and bytes a test stubs, and
//! counts what it was sent.

use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::{Process, peers_dir, require};

/// A running WireMock on 127.0.0.1; the process is killed when this is dropped.
pub struct WireMock {
    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub base: String,
    child: Process,
    http: reqwest::Client,
    _root: TempDir,
}

/// Starts WireMock on a free port and waits until its admin API answers.
pub async fn start() -> WireMock {
    let jar = standalone_jar();
    let jar = jar.display().to_string();
    // Its working files (mappings/, __files/) go to a fresh directory, not into tests/peers.
    let root = tempfile::tempdir().expect("WireMock root directory");
    let root_dir = root.path().display().to_string();
    let mut child = Process::spawn(
        "WireMock",
        "java",
        &[
            "-jar",
            &jar,
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--root-dir",
            &root_dir,
            "--disable-banner",
            "--disable-gzip",
            "--disable-request-logging",
        ],
        &[],
    );

    // With port 0 it prints the port it took as `port:   12345`.
    let port: u16 = child
        .wait_for(Duration::from_secs(60), |stdout| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix("port:"))
                .and_then(|port| port.trim().parse().ok())
        })
        .await;
    let wiremock = WireMock {
        base: format!("http://127.0.0.1:{port}"),
        child,
        http: reqwest::Client::new(),
        _root: root,
    };
    wiremock.wait_until_admin_answers().await;
    wiremock
}

/// The jar inside `node_modules/wiremock/build`, whatever its version.
fn standalone_jar() -> std::path::PathBuf {
    let build = require("node_modules/wiremock/build", "the WireMock standalone jar");
    std::fs::read_dir(&build)
        .expect("read node_modules/wiremock/build")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with("wiremock-standalone-") && name.ends_with(".jar")
                })
        })
        .unwrap_or_else(|| {
            panic!(
                "no wiremock-standalone-*.jar in {}: run `bash tests/setup` to install the test \
                 peers",
                peers_dir().join("node_modules/wiremock/build").display()
            )
        })
}

impl WireMock {
    /// `base` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers every `method` request to `path` (query string ignored) with `status`, a
    /// `Content-Type` of exactly `content_type` and exactly `body`.
    pub async fn stub(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) {
        let mapping = json!({
            "request": { "method": method, "urlPath": path },
            "response": {
                "status": status,
                "headers": { "Content-Type": content_type },
                "body": body,
            },
        });
        let response = self
            .http
            .post(self.url("/__admin/mappings"))
            .json(&mapping)
            .send()
            .await
            .expect("POST /__admin/mappings");
        assert_eq!(
            response.status(),
            201,
            "WireMock refused the stub {mapping}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// How many `method` requests to `path` (query string ignored) WireMock has received.
    pub async fn count(&self, method: &str, path: &str) -> u64 {
        let response = self
            .http
            .post(self.url("/__admin/requests/count"))
            .json(&json!({ "method": method, "urlPath": path }))
            .send()
            .await
            .expect("POST /__admin/requests/count");
        assert_eq!(response.status(), 200, "request count status");
        let body: Value = response.json().await.expect("request count JSON");
        body["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("request count answer without `count`: {body}"))
    }

    /// What WireMock wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.child.stderr()
    }

    async fn wait_until_admin_answers(&self) {
        for _ in 0..400 {
            if let Ok(response) = self.http.get(self.url("/__admin/mappings")).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "WireMock's admin API did not answer at {} within 10 s:\n{}",
            self.base,
            self.logs()
        );
    }
}
