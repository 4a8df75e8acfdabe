//! Connect, proxy, refresh on expiry (once, also under parallel load), revoke.

use serde_json::Value;

use super::{CLIENT_ID, CLIENT_SECRET, World, values};
use crate::on_both_backends;
use crate::support::{Backend, expect_problem};

on_both_backends!(
    connects_proxies_refreshes_once_and_revokes_everywhere,
    deleting_a_vault_revokes_its_connections_at_the_provider,
);

async fn connects_proxies_refreshes_once_and_revokes_everywhere(backend: Backend) {
    let world = World::new(backend).await;
    let mut seen = String::new();

    let connection = world.connect().await;
    let first = world.tokens(&connection).await;
    assert!(
        first.refresh_token.is_some(),
        "the provider issued a refresh token"
    );

    let me = world.proxy(&connection, "me").await;
    assert_eq!(me.status(), 200);
    let claims: Value = me.json().await.unwrap();
    seen.push_str(&claims.to_string());
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(world.provider.token_requests().await, (1, 0));

    // After expiry the next call refreshes, transparently.
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    let me = world.proxy(&connection, "me").await;
    assert_eq!(me.status(), 200);
    seen.push_str(&me.text().await.unwrap());
    assert_eq!(world.provider.token_requests().await, (1, 1));

    // Eight parallel calls after expiry: one token request, and all succeed.
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    let calls = (0..8).map(|_| world.proxy(&connection, "me"));
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.status(), 200);
        seen.push_str(&response.text().await.unwrap());
    }
    assert_eq!(
        world.provider.token_requests().await,
        (1, 2),
        "exactly one refresh for eight callers"
    );
    let last = world.tokens(&connection).await;

    let deleted = world
        .app
        .delete(
            &world.app.partner.key,
            &format!("/v1/vaults/{}/connections/{connection}", world.vault),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["status"], "revoked");
    assert_eq!(deleted["upstream_revocation"], "revoked", "{deleted}");

    for token in values(&last).iter().take(2) {
        assert!(
            !world
                .provider
                .introspect(CLIENT_ID, CLIENT_SECRET, token)
                .await,
            "the provider still honours a token"
        );
    }
    expect_problem(
        world.proxy(&connection, "me").await,
        409,
        "connection_revoked",
    )
    .await;

    // No token value the provider issued is in any response, log line, audit row or file.
    let audit: Value = world
        .app
        .get(&world.app.partner.key, "/v1/audit?limit=100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Value = world.connections().await.into();
    let logs = world.app.server.logs();
    for token in values(&first).into_iter().chain(values(&last)) {
        assert!(!seen.contains(&token), "a token reached a proxy response");
        assert!(
            !audit.to_string().contains(&token),
            "a token reached the audit log"
        );
        assert!(
            !listed.to_string().contains(&token),
            "a token reached the connections list"
        );
        assert!(!logs.contains(&token), "a token reached the log");
        let files = world.app.files_containing(token.as_bytes());
        assert!(files.is_empty(), "a token is stored in clear in {files:?}");
    }
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "connection.created",
        "connection.refreshed",
        "proxy.request",
        "connection.revoked",
        "connection.upstream_revocation",
    ] {
        assert!(
            actions.contains(&expected),
            "audit lacks {expected}: {actions:?}"
        );
    }
}

async fn deleting_a_vault_revokes_its_connections_at_the_provider(backend: Backend) {
    let world = World::new(backend).await;
    let connection = world.connect().await;
    let tokens = world.tokens(&connection).await;

    let response = world
        .app
        .delete(
            &world.app.partner.key,
            &format!("/v1/vaults/{}", world.vault),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["connections_revoked"], 1);
    for token in values(&tokens).iter().take(2) {
        assert!(
            !world
                .provider
                .introspect(CLIENT_ID, CLIENT_SECRET, token)
                .await,
            "a token survived the vault"
        );
    }
    expect_problem(
        world.proxy(&connection, "me").await,
        409,
        "connection_revoked",
    )
    .await;
    let audit: Value = world
        .app
        .get(
            &world.app.partner.key,
            &format!("/v1/audit?connection_id={connection}&action=connection.upstream_revocation"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"][0]["reason"], "revoked", "{audit}");
}
