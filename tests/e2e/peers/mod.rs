//! Third-party software the OAuth and proxy tests run against, installed by `bash tests/setup`
//! into `tests/peers`: a real OpenID provider, WireMock for replayed upstream answers, httpbin as
//! an upstream API that echoes what it receives, and headless Chromium for a person's side of a
//! consent.
//!
//! Each peer is a child process on 127.0.0.1 that dies with its handle. A peer that is not
//! installed fails the test with a message that says how to install it; nothing is skipped.

pub mod browser;
pub mod httpbin;
pub mod oidc;
pub mod wiremock;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Where the peers' scripts and their `node_modules` live.
pub fn peers_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/peers"))
}

/// Panics, naming the fix, unless `relative` exists under the peers directory.
fn require(relative: &str, what: &str) -> PathBuf {
    let path = peers_dir().join(relative);
    assert!(
        path.exists(),
        "{what} is missing ({} not found): run `bash tests/setup` to install the test peers",
        path.display()
    );
    path
}

/// A peer's process with its stdout and stderr kept in files of a temporary directory. The
/// process is killed when this is dropped.
struct Process {
    name: &'static str,
    child: Child,
    dir: TempDir,
}

impl Process {
    /// Starts `program` with `args` and `env` in the peers directory, stdin closed.
    fn spawn(name: &'static str, program: &str, args: &[&str], env: &[(&str, String)]) -> Process {
        let dir = tempfile::tempdir().expect("peer directory");
        let stdout = std::fs::File::create(dir.path().join("stdout")).expect("peer stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("peer stderr file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(peers_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name} with `{program}` ({e}): run `bash tests/setup`")
            });
        Process { name, child, dir }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir().join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir().join("stderr")).unwrap_or_default()
    }

    /// Polls stdout until `ready` finds what it looks for. Panics with everything the process
    /// printed if it exits first or takes longer than `within`.
    async fn wait_for<T>(&mut self, within: Duration, ready: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = ready(&self.stdout()) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready within {within:?}:\n{}\n{}",
                self.name,
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
