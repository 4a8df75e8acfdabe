//! Debian's Chromium, headless, driven by `tests/peers/browser.mjs` (playwright-core) through an
//! oidc-provider development login and consent, as a person would click through them.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Process, require};

const CHROMIUM: &str = "/usr/bin/chromium";

/// One headless browser run per consent, each with a fresh profile: no cookie or session
/// survives from one run to the next.
pub struct Browser;

impl Browser {
    /// Opens `start_url` (an authorization request), signs in with any login and password,
    /// approves the consent, and returns the first URL the browser navigates to that starts
    /// with `stop_prefix` (normally the client's redirect URI, which still receives that
    /// request). `Err` carries what the script and the browser said.
    pub async fn run_consent(start_url: &str, stop_prefix: &str) -> Result<String, String> {
        require("node_modules/playwright-core", "playwright-core");
        let script = require("browser.mjs", "tests/peers/browser.mjs");
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: run `bash tests/setup` to install Debian's chromium"
        );
        let script = script.display().to_string();
        let mut child = Process::spawn(
            "browser.mjs",
            "node",
            &[&script, start_url, stop_prefix],
            &[],
        );

        let status = tokio::time::timeout(Duration::from_secs(60), child.child.wait())
            .await
            .map_err(|_| {
                format!(
                    "the browser did not finish within 60 s:\n{}",
                    child.stderr()
                )
            })?
            .map_err(|e| format!("waiting for the browser: {e}"))?;
        if !status.success() {
            return Err(format!(
                "the browser run failed ({status}):\n{}",
                child.stderr()
            ));
        }
        let stdout = child.stdout();
        let line: Value = serde_json::from_str(stdout.trim())
            .map_err(|e| format!("browser.mjs printed no JSON line ({e}): {stdout}"))?;
        line["url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("browser.mjs printed no url: {stdout}"))
    }
}
