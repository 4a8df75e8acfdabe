//! Every way a callback can be wrong stores nothing and ends on a clear error page.

use super::{CLIENT_ID, CLIENT_SECRET, KEY, World, browser, callback_url, param};
use crate::on_both_backends;
use crate::peers::oidc;
use crate::support::Backend;

on_both_backends!(bad_callbacks_store_nothing_and_end_on_an_error_page);

/// Sends `url` with `client` and checks the error page names `code`.
async fn refused(client: &reqwest::Client, url: &str, code: &str, case: &str) {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 400, "case {case}");
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "no-store",
        "case {case}"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("Not connected"), "case {case}: {page}");
    assert!(
        page.contains(code),
        "case {case}: the page names {code}: {page}"
    );
}

/// `url` with its `name` parameter replaced (or added).
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(others)
        .append_pair(name, value);
    parsed.to_string()
}

async fn bad_callbacks_store_nothing_and_end_on_an_error_page(backend: Backend) {
    let world = World::new(backend).await;
    let callback_base = callback_url(&world.app, KEY);
    let db = world.app.db.connect().await;

    // Denied consent.
    let b = browser();
    let authorize = world.begin(&b).await;
    let denied = world.provider.consent(&authorize, false).await;
    assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"));
    refused(&b, &denied, "access_denied", "denied consent").await;

    // The provider leg started without the connect page (a link planted elsewhere).
    let created: serde_json::Value = world
        .app
        .post(
            &world.app.partner.key,
            &format!("/v1/vaults/{}/connect-sessions", world.vault),
            &serde_json::json!({"integration": KEY}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let start = format!("{}/start", created["url"].as_str().unwrap());
    refused(
        &browser(),
        &start,
        "start_from_page",
        "start without the page",
    )
    .await;

    // Missing and forged state.
    refused(
        &b,
        &format!("{callback_base}?code=abc"),
        "invalid_state",
        "missing state",
    )
    .await;
    refused(
        &b,
        &format!("{callback_base}?code=abc&state=forged-state-value"),
        "invalid_state",
        "forged state",
    )
    .await;

    // A state from another browser.
    let authorize = world.begin(&b).await;
    let answer = world.provider.consent(&authorize, true).await;
    refused(
        &browser(),
        &answer,
        "browser_mismatch",
        "state from another browser",
    )
    .await;

    // An expired state.
    let authorize = world.begin(&b).await;
    sqlx::query("UPDATE connect_sessions SET expires_at = 1 WHERE status = 'started'")
        .execute(db.pool())
        .await
        .unwrap();
    let answer = world.provider.consent(&authorize, true).await;
    refused(&b, &answer, "session_expired", "expired state").await;

    assert!(
        world.connections().await.is_empty(),
        "a failed flow stored a connection"
    );

    // A replayed state: the same callback twice.
    let authorize = world.begin(&b).await;
    let good = world.provider.consent(&authorize, true).await;
    assert_eq!(b.get(&good).send().await.unwrap().status(), 200);
    assert_eq!(world.connections().await.len(), 1);
    refused(&b, &good, "state_already_used", "replayed state").await;

    // A reused code: the first flow's code with a second flow's state and browser.
    let authorize = world.begin(&b).await;
    let state = param(&authorize, "state").unwrap();
    let reused = with_param(&good, "state", &state);
    refused(&b, &reused, "invalid_grant", "reused code").await;

    // A callback carrying a second provider's `iss` (a mix-up): the flow started at provider A,
    // provider B answers with its own code and issuer.
    let other = oidc::start(
        CLIENT_ID,
        CLIENT_SECRET,
        std::slice::from_ref(&callback_base),
        5,
    )
    .await;
    let authorize = world.begin(&b).await;
    let at_b = authorize.replacen(&world.provider.issuer, &other.issuer, 1);
    let from_b = other.consent(&at_b, true).await;
    assert_eq!(
        param(&from_b, "iss").as_deref(),
        Some(other.issuer.as_str())
    );
    refused(&b, &from_b, "issuer_mismatch", "second provider's iss").await;
    assert_eq!(
        other.token_requests().await,
        (0, 0),
        "the mixed-up code was never sent anywhere"
    );

    assert_eq!(
        world.connections().await.len(),
        1,
        "only the one good flow stored a connection"
    );
    let (failed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM connect_sessions WHERE status = 'failed'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(
        failed >= 4,
        "failed sessions are recorded as failed ({failed})"
    );
}
