//! The whole flow in headless Chromium: the hosted page, the provider's login and consent, the
//! callback and the partner's return URL.

use serde_json::{Value, json};

use super::{KEY, World, param};
use crate::peers::browser::Browser;
use crate::support::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_in_a_real_browser_and_returns_to_the_partner() {
    let world = World::new(Backend::Sqlite).await;
    let return_url = format!("{}/partner-app/connected", world.app.server.base);
    let settings = json!({"allowed_return_urls": [return_url]});
    let response = world
        .app
        .http
        .put(world.app.url("/v1/settings"))
        .bearer_auth(&world.app.partner.key)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session: Value = world
        .app
        .post(
            &world.app.partner.key,
            &format!("/v1/vaults/{}/connect-sessions", world.vault),
            &json!({"integration": KEY, "return_url": return_url}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let landed = Browser::run_consent(session["url"].as_str().unwrap(), &return_url)
        .await
        .unwrap_or_else(|e| panic!("the browser flow failed: {e}"));

    assert_eq!(
        param(&landed, "status").as_deref(),
        Some("connected"),
        "{landed}"
    );
    let connection = param(&landed, "connection_id").expect("the return URL names the connection");
    let connections = world.connections().await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["id"], connection.as_str());
    assert_eq!(connections[0]["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_url_must_be_registered_exactly() {
    let world = World::new(Backend::Sqlite).await;
    let registered = format!("{}/partner-app/connected", world.app.server.base);
    world
        .app
        .http
        .put(world.app.url("/v1/settings"))
        .bearer_auth(&world.app.partner.key)
        .json(&json!({"allowed_return_urls": [registered]}))
        .send()
        .await
        .unwrap();
    let path = format!("/v1/vaults/{}/connect-sessions", world.vault);
    for (case, url) in [
        ("prefix", format!("{registered}/more")),
        (
            "query added",
            format!("{registered}?next=https://evil.test"),
        ),
        (
            "other host",
            "https://evil.test/partner-app/connected".to_owned(),
        ),
    ] {
        let response = world
            .app
            .post(
                &world.app.partner.key,
                &path,
                &json!({"integration": KEY, "return_url": url}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "case {case}");
    }
}
