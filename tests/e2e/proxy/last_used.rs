//! A proxied call advances its connection's `last_used_at`, on either backend's audit writer,
//! also when several connections are used at once.

use serde_json::Value;

use super::upstream::{Answer, Upstream};
use super::{api_key_integration, deposit};
use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(proxied_calls_advance_last_used_at);

async fn proxied_calls_advance_last_used_at(backend: Backend) {
    let upstream = Upstream::start(Answer::Echo).await;
    let app = TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
    api_key_integration(&app, &upstream.base, "127.0.0.1").await;
    let mut connections = Vec::new();
    for user in ["u-used-1", "u-used-2", "u-used-3"] {
        let vault = app.create_vault(user).await;
        let created = deposit(&app, &vault, "used-key-1").await;
        assert_eq!(
            created["last_used_at"],
            Value::Null,
            "unused yet: {created}"
        );
        let id = created["id"].as_str().unwrap();
        connections.push(format!("/v1/vaults/{vault}/connections/{id}"));
    }

    // All at once, so the writer is likely to see them in one batch.
    let calls = connections.iter().map(|path| {
        let id = path.rsplit('/').next().unwrap();
        app.get(&app.partner.key, &format!("/v1/proxy/{id}/ping"))
            .send()
    });
    for answer in futures_util::future::join_all(calls).await {
        assert_eq!(answer.unwrap().status(), 200);
    }

    // Advanced after the calls are answered: wait for it, within a few seconds.
    for path in &connections {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let read: Value = app
                .get(&app.partner.key, path)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if read["last_used_at"].is_string() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path}: last_used_at not advanced: {read}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
