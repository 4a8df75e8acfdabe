//! A token refresh killed in flight, against oidc-provider rotating refresh tokens (presenting
//! a rotated one revokes the whole grant, so a lost rotation shows up as `reauth_required`).
//!
//! What the broker can promise: a rotated token set is committed before the lease is released,
//! so no waiter, in this process or after a restart, ever spends the old refresh token. What no
//! broker can promise: when the kill lands after the provider rotated the token and before
//! the answer reached the database, the new refresh token exists only at the provider. The
//! test tells the two apart by comparing the provider's count of refresh requests with the
//! refreshes committed (`seal_version - 1`): if they agree, nothing was in flight at the
//! provider and the connection must keep working; if the provider saw more, the kill cut a
//! token request short and the connection may need re-authorization, which it must then say.

use std::time::Duration;

use super::{KILLS, assert_audit_verifies, random_delay};
use crate::oauth::World;
use crate::on_both_backends;
use crate::support::{Backend, expect_problem};

on_both_backends!(a_refresh_killed_in_flight_loses_no_refresh_token);

/// Whether a refresh lease is held: the kill landed between taking it and committing.
async fn lease_held(world: &World, connection: &str) -> bool {
    let db = world.app.db.connect().await;
    let (owner,): (Option<String>,) =
        sqlx::query_as("SELECT refresh_lease_owner FROM connections WHERE id = $1")
            .bind(connection)
            .fetch_one(db.pool())
            .await
            .unwrap();
    owner.is_some()
}

async fn seal_version(world: &World, connection: &str) -> u64 {
    let db = world.app.db.connect().await;
    let (version,): (i64,) = sqlx::query_as("SELECT seal_version FROM connections WHERE id = $1")
        .bind(connection)
        .fetch_one(db.pool())
        .await
        .unwrap();
    version as u64
}

async fn a_refresh_killed_in_flight_loses_no_refresh_token(backend: Backend) {
    let mut world = World::new(backend).await;
    let mut connection = world.connect().await;
    // The provider's refresh count that corresponds to `seal_version` 1 of `connection`.
    let mut base = world.provider.token_requests().await.1;
    let (mut kept, mut cut_short, mut mid_refresh) = (0, 0, 0);
    for _ in 0..KILLS {
        // Access tokens live five seconds and are refreshed one second early: wait until the
        // next call is due to refresh, then make several at once and kill during them.
        tokio::time::sleep(Duration::from_millis(4_200) + random_delay(600)).await;
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let (http, url, key) = (
                    world.app.http.clone(),
                    world.app.url(&format!("/v1/proxy/{connection}/me")),
                    world.app.partner.key.clone(),
                );
                tokio::spawn(async move { http.get(url).bearer_auth(key).send().await })
            })
            .collect();
        tokio::time::sleep(random_delay(40)).await;
        world.app.kill_and_restart().await;
        for call in calls {
            let _ = call.await.unwrap();
        }

        if lease_held(&world, &connection).await {
            mid_refresh += 1;
        }
        let committed = seal_version(&world, &connection).await - 1;
        let requested = world.provider.token_requests().await.1 - base;
        assert!(
            requested >= committed,
            "more refreshes committed ({committed}) than the provider answered ({requested})"
        );
        let after = world.proxy(&connection, "me").await;
        if requested == committed {
            assert_eq!(
                after.status(),
                200,
                "no token request was in flight at the kill, yet the connection broke: {}",
                after.text().await.unwrap()
            );
            kept += 1;
        } else if after.status() == 200 {
            // The cut-short request never reached the provider's rotation.
            kept += 1;
        } else {
            // The provider rotated the refresh token and the kill took the answer with it.
            // The connection must say so plainly, and a new connection works.
            expect_problem(after, 409, "reauth_required").await;
            cut_short += 1;
            connection = world.connect().await;
        }
        // The next round starts from what both sides agree on now.
        base =
            world.provider.token_requests().await.1 - (seal_version(&world, &connection).await - 1);
    }
    eprintln!(
        "{kept} kills around a refresh kept the connection ({mid_refresh} landed while a \
         refresh lease was held); {cut_short} cut a token request short at the provider"
    );
    assert!(kept > 0, "no kill left a working connection");
    assert_audit_verifies(&world.app).await;
}
