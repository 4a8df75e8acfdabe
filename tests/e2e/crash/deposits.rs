//! API-key deposits with `Idempotency-Key`, the server killed while they are in flight, and
//! every deposit retried with its key after the restart: no deposit is lost, none is stored
//! twice, and each connection injects the key deposited into it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{KILLS, all_connections, assert_audit_verifies, random_delay};
use crate::on_both_backends;
use crate::proxy::upstream::{Answer, Upstream};
use crate::support::{Backend, TestApp};

on_both_backends!(deposits_survive_kills_without_loss_or_duplicates);

/// Deposits per round, all in flight when the kill lands.
const PER_ROUND: usize = 12;

/// One deposit: its body and idempotency key, and the connection id once one was answered.
struct Attempt {
    idem: String,
    api_key: String,
    id: Option<String>,
}

async fn deposit(
    http: &reqwest::Client,
    base: &str,
    partner_key: &str,
    vault: &str,
    attempt: (&str, &str),
) -> Result<(u16, String), String> {
    let (idem, api_key) = attempt;
    let response = http
        .post(format!("{base}/v1/vaults/{vault}/connections"))
        .bearer_auth(partner_key)
        .header("Idempotency-Key", idem)
        .json(&json!({"integration": "target", "api_key": api_key}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    match body["id"].as_str() {
        Some(id) if status == 200 || status == 201 => Ok((status, id.to_owned())),
        _ => Err(format!("{status}: {body}")),
    }
}

async fn deposits_survive_kills_without_loss_or_duplicates(backend: Backend) {
    let upstream = Upstream::start(Answer::Echo).await;
    let mut app =
        TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
    let integration = json!({"key": "target", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": upstream.base, "allowed_hosts": ["127.0.0.1"]},
        "inject": {"style": "bearer"}});
    let response = app
        .post(&app.partner.key, "/v1/integrations", &integration)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let vault = app.create_vault("u-crash-deposits").await;

    let mut attempts: Vec<Attempt> = Vec::new();
    for round in 0..KILLS {
        let tasks: Vec<_> = (0..PER_ROUND)
            .map(|n| {
                let idem = format!("deposit-{round}-{n}");
                let api_key = format!("crash-key-{round}-{n}-{}", ulid::Ulid::new());
                let (http, base, partner_key, vault) = (
                    app.http.clone(),
                    app.server.base.clone(),
                    app.partner.key.clone(),
                    vault.clone(),
                );
                tokio::spawn(async move {
                    let answer =
                        deposit(&http, &base, &partner_key, &vault, (&idem, &api_key)).await;
                    Attempt {
                        idem,
                        api_key,
                        id: answer.ok().map(|(_, id)| id),
                    }
                })
            })
            .collect();
        tokio::time::sleep(random_delay(40)).await;
        app.kill_and_restart().await;
        for task in tasks {
            attempts.push(task.await.unwrap());
        }
    }

    // Every deposit is retried with its key, answered or not: an answered one replays its
    // connection, an unanswered one either replays the connection it committed or makes it now.
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    let mut replayed_unanswered = 0;
    for attempt in &attempts {
        let (status, id) = deposit(
            &app.http,
            &app.server.base,
            &app.partner.key,
            &vault,
            (&attempt.idem, &attempt.api_key),
        )
        .await
        .unwrap_or_else(|e| panic!("retry of {}: {e}", attempt.idem));
        if let Some(first) = &attempt.id {
            assert_eq!(
                &id, first,
                "a retry of {} made a new connection",
                attempt.idem
            );
            assert_eq!(status, 200, "a replay answers 200");
        } else if status == 200 {
            replayed_unanswered += 1;
        }
        assert!(
            by_id.insert(id, attempt.api_key.clone()).is_none(),
            "two deposits share a connection"
        );
    }
    let answered = attempts.iter().filter(|a| a.id.is_some()).count();
    eprintln!(
        "{} deposits: {answered} answered before a kill, {replayed_unanswered} committed unanswered",
        attempts.len()
    );

    let stored = all_connections(&app, &vault).await;
    let stored_ids: Vec<&str> = stored.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        stored_ids.len(),
        attempts.len(),
        "connections stored vs deposits made"
    );
    for id in &stored_ids {
        assert!(
            by_id.contains_key(*id),
            "a connection nobody deposited: {id}"
        );
    }

    // Each connection injects its own key.
    for (id, api_key) in &by_id {
        let response = app
            .get(&app.partner.key, &format!("/v1/proxy/{id}/check/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "proxy through {id}");
        let seen = upstream.requests();
        let head = &seen
            .iter()
            .rev()
            .find(|s| s.head.contains(&format!("/check/{id} ")))
            .expect("the upstream saw the call")
            .head;
        assert!(
            head.contains(&format!("Bearer {api_key}\r\n")),
            "connection {id} injected another key"
        );
    }
    assert_audit_verifies(&app).await;
}
