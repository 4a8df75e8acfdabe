//! Crash safety: the server is killed with SIGKILL while an operation is in flight, restarted on
//! the same database, and what it left behind is checked. Every multi-row change is one
//! transaction, so a kill leaves each change either whole or absent; an absent one is finished
//! by repeating the request.

mod deposits;
mod provision;
mod proxy_audit;
mod refresh;
mod revoke;

use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use crate::support::TestApp;

/// How many kills one test makes: enough to land in different phases of the operation, few
/// enough that a test stays under a minute or two.
pub const KILLS: usize = 4;

/// A random delay up to `max_ms`, so that the kills land at different points of the operation.
pub fn random_delay(max_ms: u64) -> Duration {
    Duration::from_millis(rand::thread_rng().gen_range(0..=max_ms))
}

/// Asserts that every partner's audit chain verifies.
pub async fn assert_audit_verifies(app: &TestApp) {
    let result: Value = app
        .get(&app.partner.key, "/v1/audit/verify")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["ok"], true, "audit verify after a crash: {result}");
}

/// Every connection of a vault, all pages.
pub async fn all_connections(app: &TestApp, vault: &str) -> Vec<Value> {
    crate::support::all_pages(app, &format!("/v1/vaults/{vault}/connections?limit=100")).await
}
