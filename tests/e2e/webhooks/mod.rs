//! Webhooks: registration and its vetting, signed deliveries of lifecycle changes, retries with
//! one `webhook-id`, the outbox surviving a killed server, and disabling a dead endpoint.

mod delivery;
pub(crate) mod receiver;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, expect_problem};

on_both_backends!(registration_shows_the_secret_once_and_vets_the_url);

/// Registers a webhook for `events` at `url` and returns the 201 answer.
pub async fn register(app: &TestApp, url: &str, events: &[&str]) -> Value {
    let response = app
        .post(
            &app.partner.key,
            "/v1/webhooks",
            &json!({"url": url, "events": events}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {url}");
    response.json().await.unwrap()
}

async fn registration_shows_the_secret_once_and_vets_the_url(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.partner.key;

    // Without the operator switch: https and public addresses only.
    let refused = [
        ("loopback", "https://127.0.0.1/hooks"),
        ("plain http", "http://93.184.215.14/hooks"),
        ("localhost", "https://localhost/hooks"),
        ("private", "https://10.0.0.8/hooks"),
        ("metadata", "https://169.254.169.254/latest"),
    ];
    for (case, url) in refused {
        let response = app
            .post(
                key,
                "/v1/webhooks",
                &json!({"url": url, "events": ["connection.created"]}),
            )
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["field"], "url", "case {case}");
    }
    let unknown = app
        .post(
            key,
            "/v1/webhooks",
            &json!({"url": "https://93.184.215.14/hooks", "events": ["connection.deleted"]}),
        )
        .send()
        .await
        .unwrap();
    expect_problem(unknown, 400, "invalid_json").await;
    let none = app
        .post(
            key,
            "/v1/webhooks",
            &json!({"url": "https://93.184.215.14/hooks", "events": []}),
        )
        .send()
        .await
        .unwrap();
    expect_problem(none, 422, "validation_failed").await;
    let listed: Value = app
        .get(key, "/v1/webhooks")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]), "refused input created nothing");

    // A public address is accepted; the secret is shown now and never again.
    let created = register(
        &app,
        "https://93.184.215.14/hooks",
        &["vault.revoked", "connection.created"],
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("whk_"), "{created}");
    assert_eq!(created["status"], "active");
    assert_eq!(
        created["events"],
        json!(["connection.created", "vault.revoked"])
    );
    let secret = created["secret"].as_str().unwrap().to_owned();
    let raw = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    assert!(raw.len() >= 24, "the secret has {} bytes", raw.len());
    let shown = [
        (true, app.get(key, &format!("/v1/webhooks/{id}"))),
        (true, app.get(key, "/v1/webhooks")),
        (
            false,
            app.get(key, &format!("/v1/webhooks/{id}/deliveries")),
        ),
        (true, app.get(key, "/v1/audit")),
    ];
    for (names_it, request) in shown {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert_eq!(
            text.contains(&id),
            names_it,
            "the answer names the webhook: {text}"
        );
        assert!(
            !text.contains(&secret),
            "the secret was shown again: {text}"
        );
        assert!(!text.contains("\"secret\""), "a secret field: {text}");
    }
    let stored = app.files_containing(secret.as_bytes());
    let raw_stored = app.files_containing(&raw);
    assert!(
        stored.is_empty() && raw_stored.is_empty(),
        "the secret is stored in clear: {stored:?} {raw_stored:?}"
    );

    // Another partner's webhook looks missing.
    let intruder = app.new_partner("intruder");
    for request in [
        app.get(&intruder.key, &format!("/v1/webhooks/{id}")),
        app.get(&intruder.key, &format!("/v1/webhooks/{id}/deliveries")),
        app.delete(&intruder.key, &format!("/v1/webhooks/{id}")),
    ] {
        expect_problem(request.send().await.unwrap(), 404, "not_found").await;
    }

    let deleted = app
        .delete(key, &format!("/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["status"], "deleted");
    let gone = app
        .get(key, &format!("/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    expect_problem(gone, 404, "not_found").await;
    let audit: Value = app
        .get(key, "/v1/audit")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("webhook."))
        .collect();
    assert_eq!(actions, ["webhook.created", "webhook.deleted"]);
}
