//! Revocation killed in flight: after the restart each connection is either wholly revoked
//! (status, ciphertext and audit event together) or wholly untouched, and repeating the DELETE
//! finishes it. What happened at the provider is reported: a revocation the kill cut short is
//! answered as `failed`, never claimed as done.

use serde_json::Value;

use super::{KILLS, assert_audit_verifies, random_delay};
use crate::oauth::{CLIENT_ID, CLIENT_SECRET, World, values};
use crate::on_both_backends;
use crate::support::{Backend, expect_problem};

on_both_backends!(a_killed_revoke_is_whole_or_finished_by_repeating_it);

/// Status, whether ciphertext remains, and how many `connection.revoked` events exist.
async fn row_state(world: &World, connection: &str) -> (String, bool, usize) {
    let db = world.app.db.connect().await;
    let (status, sealed): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT status, sealed FROM connections WHERE id = $1")
            .bind(connection)
            .fetch_one(db.pool())
            .await
            .unwrap();
    let audit: Value = world
        .app
        .get(
            &world.app.partner.key,
            &format!("/v1/audit?connection_id={connection}&action=connection.revoked"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = audit["data"].as_array().unwrap().len();
    (status, sealed.is_some(), events)
}

fn delete_url(world: &World, path: &str) -> (reqwest::Client, String, String) {
    (
        world.app.http.clone(),
        world.app.url(path),
        world.app.partner.key.clone(),
    )
}

async fn a_killed_revoke_is_whole_or_finished_by_repeating_it(backend: Backend) {
    let mut world = World::new(backend).await;
    let mut cut_short = 0;
    for _ in 0..KILLS {
        let connections = [world.connect().await, world.connect().await];
        let mut tokens = Vec::new();
        for connection in &connections {
            tokens.push(world.tokens(connection).await);
        }
        let deletes: Vec<_> = connections
            .iter()
            .map(|connection| {
                let path = format!("/v1/vaults/{}/connections/{connection}", world.vault);
                let (http, url, key) = delete_url(&world, &path);
                tokio::spawn(async move { http.delete(url).bearer_auth(key).send().await })
            })
            .collect();
        tokio::time::sleep(random_delay(30)).await;
        world.app.kill_and_restart().await;
        for delete in deletes {
            let _ = delete.await.unwrap();
        }

        for (connection, tokens) in connections.iter().zip(&tokens) {
            let (status, sealed, events) = row_state(&world, connection).await;
            match status.as_str() {
                "revoked" => {
                    assert!(!sealed, "revoked but its ciphertext is still stored");
                    assert_eq!(events, 1, "revoked without (or with two) audit events");
                }
                "active" => {
                    assert!(sealed, "active without a credential");
                    assert_eq!(events, 0, "a revocation event for an active connection");
                }
                other => panic!("unexpected status after a kill: {other}"),
            }

            // Repeating the DELETE finishes the revocation, and reports the provider's side.
            let repeated = world
                .app
                .delete(
                    &world.app.partner.key,
                    &format!("/v1/vaults/{}/connections/{connection}", world.vault),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(repeated.status(), 200);
            let repeated: Value = repeated.json().await.unwrap();
            assert_eq!(repeated["status"], "revoked", "{repeated}");
            match repeated["upstream_revocation"].as_str() {
                Some("revoked") => {
                    for token in values(tokens).iter().take(2) {
                        assert!(
                            !world
                                .provider
                                .introspect(CLIENT_ID, CLIENT_SECRET, token)
                                .await,
                            "reported revoked, but the provider still honours a token"
                        );
                    }
                }
                // The kill landed after the local revocation committed and before the
                // provider answered: the tokens are gone here and the answer says so.
                Some("failed") => cut_short += 1,
                other => panic!("upstream_revocation {other:?}: {repeated}"),
            }
            let (status, sealed, events) = row_state(&world, connection).await;
            assert_eq!((status.as_str(), sealed, events), ("revoked", false, 1));
            expect_problem(
                world.proxy(connection, "me").await,
                409,
                "connection_revoked",
            )
            .await;
        }
    }
    eprintln!("{cut_short} upstream revocations cut short by a kill and reported as failed");

    // A vault deletion killed in flight: whole, or finished by repeating it.
    let last = world.connect().await;
    let path = format!("/v1/vaults/{}", world.vault);
    let (http, url, key) = delete_url(&world, &path);
    let delete = tokio::spawn(async move { http.delete(url).bearer_auth(key).send().await });
    tokio::time::sleep(random_delay(20)).await;
    world.app.kill_and_restart().await;
    let _ = delete.await.unwrap();
    let db = world.app.db.connect().await;
    let (status, wrapped): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT status, wrapped_key FROM vaults WHERE id = $1")
            .bind(&world.vault)
            .fetch_one(db.pool())
            .await
            .unwrap();
    let (connection_status, _, _) = row_state(&world, &last).await;
    match status.as_str() {
        "revoked" => {
            assert!(wrapped.is_none(), "a revoked vault kept its key");
            assert_eq!(connection_status, "revoked");
        }
        "active" => {
            assert!(wrapped.is_some());
            assert_eq!(connection_status, "active");
        }
        other => panic!("vault status {other}"),
    }
    let repeated = world
        .app
        .delete(&world.app.partner.key, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(repeated.status(), 200);
    let (connection_status, sealed, events) = row_state(&world, &last).await;
    assert_eq!(
        (connection_status.as_str(), sealed, events),
        ("revoked", false, 1)
    );
    expect_problem(world.proxy(&last, "me").await, 409, "connection_revoked").await;
    assert_audit_verifies(&world.app).await;
}
