//! Vault creations with `Idempotency-Key`, the server killed while many are in flight (and
//! committed several to a transaction), and every creation retried with its key after the
//! restart: each end user ends with exactly one vault, the one any answer named, and every vault
//! has exactly one `vault.created` event in a chain that verifies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{KILLS, assert_audit_verifies, random_delay};
use crate::on_both_backends;
use crate::support::{Backend, TestApp, all_pages};

on_both_backends!(vault_creations_survive_kills_whole_or_absent);

/// Creations per round, all in flight when the kill lands.
const PER_ROUND: usize = 32;

async fn create(
    http: &reqwest::Client,
    base: &str,
    partner_key: &str,
    user: &str,
) -> Result<(u16, String), String> {
    let response = http
        .post(format!("{base}/v1/vaults"))
        .bearer_auth(partner_key)
        .header("Idempotency-Key", format!("create-{user}"))
        .json(&json!({"external_user_id": user}))
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

async fn vault_creations_survive_kills_whole_or_absent(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;

    // (end user, the vault id answered before a kill, if any)
    let mut attempts: Vec<(String, Option<String>)> = Vec::new();
    for round in 0..KILLS {
        let answered = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..PER_ROUND)
            .map(|n| {
                let user = format!("u-crash-{round}-{n}");
                let (http, base, partner_key, answered) = (
                    app.http.clone(),
                    app.server.base.clone(),
                    app.partner.key.clone(),
                    answered.clone(),
                );
                tokio::spawn(async move {
                    let answer = create(&http, &base, &partner_key, &user).await;
                    answered.fetch_add(1, Ordering::SeqCst);
                    (user, answer.ok().map(|(_, id)| id))
                })
            })
            .collect();
        // The kill lands once the first creation has been answered, while the others are
        // queued, being staged or being committed.
        let deadline = Instant::now() + Duration::from_secs(20);
        while answered.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(random_delay(10)).await;
        app.kill_and_restart().await;
        for task in tasks {
            attempts.push(task.await.unwrap());
        }
    }

    // Retried with its key, an answered creation replays its vault; an unanswered one replays
    // the vault it committed or creates it now.
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let mut committed_unanswered = 0;
    for (user, first) in &attempts {
        let (status, id) = create(&app.http, &app.server.base, &app.partner.key, user)
            .await
            .unwrap_or_else(|e| panic!("retry for {user}: {e}"));
        if let Some(first) = first {
            assert_eq!(&id, first, "a retry for {user} made a new vault");
            assert_eq!(status, 200, "a replay answers 200");
        } else if status == 200 {
            committed_unanswered += 1;
        }
        expected.insert(user.clone(), id);
    }
    let answered = attempts.iter().filter(|(_, id)| id.is_some()).count();
    eprintln!(
        "{} creations: {answered} answered before a kill, {committed_unanswered} committed unanswered",
        attempts.len()
    );

    let stored: BTreeMap<String, String> = all_pages(&app, "/v1/vaults?limit=100")
        .await
        .iter()
        .map(|v| {
            let user = v["external_user_id"].as_str().unwrap().to_owned();
            (user, v["id"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(stored, expected, "one vault per end user, the one answered");
    let events = all_pages(&app, "/v1/audit?action=vault.created&limit=100").await;
    let created: Vec<&str> = events
        .iter()
        .map(|e| e["vault_id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = created.iter().copied().collect();
    assert_eq!(
        created.len(),
        unique.len(),
        "a vault with two creation events"
    );
    let ids: BTreeSet<&str> = expected.values().map(String::as_str).collect();
    assert_eq!(
        unique, ids,
        "every vault has its creation event, and only they"
    );
    assert_audit_verifies(&app).await;
}
