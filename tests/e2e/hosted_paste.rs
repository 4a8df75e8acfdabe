//! The hosted paste form of `api_key` integrations: the end user's key goes straight into the
//! vault, works through the proxy, shows up nowhere, and a link is good for exactly one key —
//! also when storing it fails halfway.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::proxy::upstream::{Answer, Upstream};
use crate::support::{Backend, TestApp};

on_both_backends!(
    a_pasted_key_is_stored_used_by_the_proxy_and_the_link_works_once,
    a_paste_that_fails_while_storing_leaves_the_link_usable,
);

const CANARY: &str = "pasted-canary-7c1e0d9a44b2";

/// An `api_key` integration at `upstream`, a vault and a connect session for it: the vault id
/// and the session's URL.
async fn session(app: &TestApp, upstream: &Upstream) -> (String, String) {
    let integration = json!({"key": "target", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": upstream.base, "allowed_hosts": ["127.0.0.1"]},
        "inject": {"style": "bearer"}});
    let response = app
        .post(&app.partner.key, "/v1/integrations", &integration)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let vault = app.create_vault("u-paste").await;
    let response = app
        .post(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connect-sessions"),
            &json!({"integration": "target"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let created: Value = response.json().await.unwrap();
    (vault, created["url"].as_str().unwrap().to_owned())
}

async fn paste(app: &TestApp, url: &str, key: &str) -> (u16, String) {
    let response = app
        .http
        .post(format!("{url}/api-key"))
        .form(&[("api_key", key)])
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

async fn connections(app: &TestApp, vault: &str) -> Vec<Value> {
    let listed: Value = app
        .get(&app.partner.key, &format!("/v1/vaults/{vault}/connections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["data"].as_array().unwrap().clone()
}

async fn a_pasted_key_is_stored_used_by_the_proxy_and_the_link_works_once(backend: Backend) {
    let upstream = Upstream::start(Answer::Echo).await;
    // Its public URL is where it listens, so the session URL can be opened as given.
    let app = TestApp::spawn_for_oauth(backend).await;
    let (vault, url) = session(&app, &upstream).await;

    let page = app.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"type="password""#), "{page}");
    assert!(page.contains("/api-key"), "{page}");

    // Not a key: the page says so and the link stays usable.
    let (status, body) = paste(&app, &url, "two words").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_api_key_format"), "{body}");
    assert!(connections(&app, &vault).await.is_empty());

    let (status, body) = paste(&app, &url, CANARY).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Connected"), "{body}");
    assert!(!body.contains(CANARY));
    let stored = connections(&app, &vault).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["status"], "active");
    assert!(!Value::Array(stored.clone()).to_string().contains(CANARY));
    let connection = stored[0]["id"].as_str().unwrap();

    let proxied = app
        .get(&app.partner.key, &format!("/v1/proxy/{connection}/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert!(!proxied.text().await.unwrap().contains(CANARY));
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0]
            .head
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {CANARY}")),
        "the upstream did not get the pasted key"
    );

    // The link is spent: a second key is refused and stores nothing.
    let (status, body) = paste(&app, &url, "another-key-123").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("session_used"), "{body}");
    assert_eq!(connections(&app, &vault).await.len(), 1);

    let audit: Value = app
        .get(&app.partner.key, "/v1/audit?action=connection.created")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"][0]["actor"], "end_user", "{audit}");
    assert!(!audit.to_string().contains(CANARY));
    assert!(!app.server.logs().contains(CANARY));
    assert_eq!(
        app.files_containing(CANARY.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
}

/// Storing the key fails after the session was claimed (the vault's public key is unreadable):
/// nothing is stored and the same link takes the key once the fault is gone.
async fn a_paste_that_fails_while_storing_leaves_the_link_usable(backend: Backend) {
    let upstream = Upstream::start(Answer::Echo).await;
    // Its public URL is where it listens, so the session URL can be opened as given.
    let app = TestApp::spawn_for_oauth(backend).await;
    let (vault, url) = session(&app, &upstream).await;
    let db = app.db.connect().await;
    let (recipient,): (String,) = sqlx::query_as("SELECT recipient FROM vaults WHERE id = $1")
        .bind(&vault)
        .fetch_one(db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE vaults SET recipient = 'age1unreadable' WHERE id = $1")
        .bind(&vault)
        .execute(db.pool())
        .await
        .unwrap();

    let (status, body) = paste(&app, &url, CANARY).await;
    assert_eq!(status, 500, "{body}");
    assert!(connections(&app, &vault).await.is_empty());

    sqlx::query("UPDATE vaults SET recipient = $1 WHERE id = $2")
        .bind(&recipient)
        .bind(&vault)
        .execute(db.pool())
        .await
        .unwrap();
    let (status, body) = paste(&app, &url, CANARY).await;
    assert_eq!(
        status, 200,
        "the link was spent by the failed attempt: {body}"
    );
    let stored = connections(&app, &vault).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    db.close().await;
}
