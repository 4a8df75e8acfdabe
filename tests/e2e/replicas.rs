//! Several replicas on one PostgreSQL database behave as one: what one replica revokes,
//! suspends or changes, every other replica stops using at once, even when it had the old
//! state in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::proxy::api_key_connection;
use crate::proxy::upstream::{Answer, Upstream};
use crate::support::{Backend, Server, TestApp, expect_problem};

/// A second replica of `app`: same database, same master key, its own port.
async fn second_replica(app: &TestApp) -> Server {
    let mut env = app.env.clone();
    env.retain(|(k, _)| k != "CONNECT_LISTEN");
    env.push(("CONNECT_LISTEN".into(), "127.0.0.1:0".into()));
    Server::start(&env)
        .await
        .unwrap_or_else(|log| panic!("second replica:\n{log}"))
}

async fn two_replicas() -> (TestApp, Server) {
    let app = TestApp::spawn_with(
        Backend::Postgres,
        &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")],
    )
    .await;
    let second = second_replica(&app).await;
    (app, second)
}

async fn proxy_status(http: &reqwest::Client, base: &str, key: &str, connection: &str) -> u16 {
    http.get(format!("{base}/v1/proxy/{connection}/ping"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn only_vault(app: &TestApp) -> String {
    let list: Value = app
        .get(&app.partner.key, "/v1/vaults")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["data"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_delete_on_one_replica_no_replica_sends_the_credential() {
    let upstream = Upstream::start(Answer::Echo).await;
    let (app, second) = two_replicas().await;
    let key = "canary-two-replica-key-31";
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", key).await;
    let vault = only_vault(&app).await;

    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..16)
        .map(|n| {
            let base = if n % 2 == 0 {
                app.server.base.clone()
            } else {
                second.base.clone()
            };
            let (http, partner_key, connection, stop) = (
                app.http.clone(),
                app.partner.key.clone(),
                connection.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut sent = 0u32;
                while !stop.load(Ordering::Relaxed) && sent < 2_000 {
                    proxy_status(&http, &base, &partner_key, &connection).await;
                    sent += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let response = app
        .delete(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connections/{connection}"),
        )
        .send()
        .await
        .unwrap();
    let returned = Instant::now();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let refused = app
        .http
        .get(format!("{}/v1/proxy/{connection}/ping", second.base))
        .bearer_auth(&app.partner.key)
        .send()
        .await
        .unwrap();
    expect_problem(refused, 409, "connection_revoked").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }

    let seen = upstream.requests();
    let before = seen.iter().filter(|s| s.at < returned).count();
    let after = seen
        .iter()
        .filter(|s| s.at >= returned && s.head.contains(key))
        .count();
    assert!(
        before > 10,
        "both replicas used the connection while it was revoked ({before} requests)"
    );
    assert_eq!(
        after, 0,
        "upstream requests carried the credential after DELETE returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_or_a_partner_suspended_on_one_replica_fails_on_the_other_at_once() {
    let upstream = Upstream::start(Answer::Echo).await;
    let (app, second) = two_replicas().await;
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", "k-replica-55").await;
    let minted: Value = app
        .post(
            &app.partner.key,
            "/v1/api-keys",
            &json!({"name": "agent", "scopes": ["proxy"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = minted["api_key"].as_str().unwrap().to_owned();
    let agent_id = minted["id"].as_str().unwrap().to_owned();
    // The second replica has checked both keys and used the connection: all of it may be in
    // its memory now.
    for key in [&agent, &app.partner.key] {
        assert_eq!(
            proxy_status(&app.http, &second.base, key, &connection).await,
            200
        );
    }

    let revoked = app
        .delete(&app.partner.key, &format!("/v1/api-keys/{agent_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        proxy_status(&app.http, &second.base, &agent, &connection).await,
        401,
        "a key revoked on one replica still worked on the other"
    );

    let out = app.cli(&["partner", "suspend", "--id", &app.partner.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for base in [&app.server.base, &second.base] {
        assert_eq!(
            proxy_status(&app.http, base, &app.partner.key, &connection).await,
            401,
            "a suspended partner's key still worked on {base}"
        );
    }
    let out = app.cli(&["partner", "resume", "--id", &app.partner.id]);
    assert!(out.status.success());
    assert_eq!(
        proxy_status(&app.http, &second.base, &app.partner.key, &connection).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_changed_on_one_replica_is_used_as_changed_on_the_other() {
    let upstream = Upstream::start(Answer::Echo).await;
    let (app, second) = two_replicas().await;
    let key = "k-moving-77";
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", key).await;
    assert_eq!(
        proxy_status(&app.http, &second.base, &app.partner.key, &connection).await,
        200
    );

    // The integration now injects into a header of its own: the other replica must use the
    // new style at once, not the one it remembers.
    let patch = json!({"inject": {"style": "header", "name": "x-api-key"}});
    let response = app
        .http
        .patch(app.url("/v1/integrations/target"))
        .bearer_auth(&app.partner.key)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        proxy_status(&app.http, &second.base, &app.partner.key, &connection).await,
        200
    );

    let seen = upstream.requests();
    let last = seen.last().unwrap().head.to_ascii_lowercase();
    assert!(
        last.contains(&format!("x-api-key: {key}")) && !last.contains("authorization:"),
        "the other replica injected as before the change:\n{last}"
    );
}
