//! Revocation under load: once DELETE returns, no upstream request carries the credential.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::api_key_connection;
use super::upstream::{Answer, Upstream};
use crate::support::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_delete_returns_no_upstream_request_carries_the_credential() {
    let upstream = Upstream::start(Answer::Echo).await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")],
    )
    .await;
    let key = "canary-hammer-key-77";
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", key).await;
    let vault = app
        .get(&app.partner.key, "/v1/vaults")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, partner_key, stop) = (
                app.http.clone(),
                app.url(&format!("/v1/proxy/{connection}/hammer")),
                app.partner.key.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut sent = 0u32;
                while !stop.load(Ordering::Relaxed) && sent < 2_000 {
                    let _ = http.get(&url).bearer_auth(&partner_key).send().await;
                    sent += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let asked = Instant::now();
    let response = app
        .delete(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connections/{connection}"),
        )
        .send()
        .await
        .unwrap();
    let returned = Instant::now();
    assert_eq!(response.status(), 200);
    // The revocation takes its turn on the database's write lock between the audit writer's
    // commits; it must not wait out the busy timeout behind them.
    let took = returned - asked;
    eprintln!("DELETE under load answered in {took:?}");
    assert!(
        took < std::time::Duration::from_secs(3),
        "DELETE under load took {took:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }

    let seen = upstream.requests();
    let before = seen.iter().filter(|s| s.at < returned).count();
    let after: Vec<_> = seen
        .iter()
        .filter(|s| s.at >= returned && s.head.contains(key))
        .collect();
    assert!(
        before > 10,
        "the connection was in use while it was revoked ({before} requests)"
    );
    assert!(
        after.is_empty(),
        "{} upstream requests carried the credential after DELETE returned",
        after.len()
    );
}
