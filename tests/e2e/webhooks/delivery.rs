//! Deliveries to a receiver on loopback (allowed by the operator switch).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use connect_sdk::webhooks::{self as verifier, WebhookHeaders};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::receiver::{Received, Receiver};
use super::register;
use crate::on_both_backends;
use crate::support::{Backend, Server, TestApp};

on_both_backends!(
    changes_arrive_signed_and_without_values,
    a_failing_receiver_gets_each_event_until_it_accepts_it_once,
    an_event_outlives_a_killed_server,
    an_endpoint_that_always_fails_is_disabled,
);

const CANARY: &str = "sk-webhook-canary-7f3e9c1d";

async fn spawn(backend: Backend, schedule: &str) -> TestApp {
    TestApp::spawn_with(
        backend,
        &[
            ("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true"),
            ("CONNECT_WEBHOOK_RETRY_SCHEDULE", schedule),
        ],
    )
    .await
}

/// An `api_key` integration `keys` for the partner.
async fn integration(app: &TestApp) {
    let body = json!({"key": "keys", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": "https://api.example.com", "allowed_hosts": ["api.example.com"]}});
    let response = app
        .post(&app.partner.key, "/v1/integrations", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// Deposits the canary key into `vault` through the API; returns the connection id.
async fn deposit(app: &TestApp, vault: &str) -> String {
    let response = app
        .post(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connections"),
            &json!({"integration": "keys", "api_key": CANARY}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

fn accepted(received: &[Received]) -> Vec<&Received> {
    received.iter().filter(|r| r.accepted()).collect()
}

/// The webhook-id of every accepted request, each exactly once.
fn accepted_once(received: &[Received]) -> Vec<String> {
    let mut ids: Vec<String> = accepted(received)
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "an event was accepted twice: {ids:?}");
    ids
}

/// The audit ids of `action`, oldest first.
async fn audit_ids(app: &TestApp, action: &str) -> Vec<String> {
    let body: Value = app
        .get(&app.partner.key, &format!("/v1/audit?action={action}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn changes_arrive_signed_and_without_values(backend: Backend) {
    let app = spawn(backend, "1").await;
    let receiver = Receiver::answering(204).await;
    let events = ["connection.created", "connection.revoked", "vault.revoked"];
    let secret = register(&app, &receiver.url, &events).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    integration(&app).await;
    let vault = app.create_vault("u-hooks").await;

    let first = deposit(&app, &vault).await;
    let revoked = app
        .delete(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connections/{first}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let second = deposit(&app, &vault).await;
    let deleted = app
        .delete(&app.partner.key, &format!("/v1/vaults/{vault}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    let received = receiver
        .wait_for("five events", Duration::from_secs(60), |r| {
            accepted(r).len() >= 5
        })
        .await;
    accepted_once(&received);
    let mut seen = Vec::new();
    for request in accepted(&received) {
        let (id, timestamp, signature) = (
            request.header("webhook-id"),
            request.header("webhook-timestamp"),
            request.header("webhook-signature"),
        );
        let headers = WebhookHeaders {
            id,
            timestamp,
            signature,
        };
        verifier::verify(&secret, &headers, &request.body, Duration::from_secs(300))
            .expect("the SDK verifier accepts the signature");
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&request.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(signature, expected, "an independent HMAC matches");
        let mut forged = request.body.clone();
        forged.extend_from_slice(b" ");
        assert!(
            verifier::verify(&secret, &headers, &forged, Duration::from_secs(300)).is_err(),
            "a changed body fails verification"
        );
        assert_eq!(request.header("content-type"), "application/json");
        let text = String::from_utf8(request.body.clone()).unwrap();
        assert!(!text.contains(CANARY), "a payload carries the key: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["id"], id, "the body's id is the webhook-id");
        assert_eq!(body["data"]["partner_id"], app.partner.id.as_str());
        assert_eq!(body["data"]["vault_id"], vault.as_str());
        seen.push((
            body["type"].as_str().unwrap().to_owned(),
            body["data"]["connection_id"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            body["data"]["status"].as_str().unwrap().to_owned(),
        ));
    }
    seen.sort();
    let mut expected = vec![
        (
            "connection.created".to_owned(),
            first.clone(),
            "active".to_owned(),
        ),
        (
            "connection.created".to_owned(),
            second.clone(),
            "active".to_owned(),
        ),
        (
            "connection.revoked".to_owned(),
            first.clone(),
            "revoked".to_owned(),
        ),
        (
            "connection.revoked".to_owned(),
            second.clone(),
            "revoked".to_owned(),
        ),
        (
            "vault.revoked".to_owned(),
            String::new(),
            "revoked".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    // The message ids are the audit events' ids.
    let mut audited = audit_ids(&app, "connection.created").await;
    audited.extend(audit_ids(&app, "vault.revoked").await);
    for id in audited {
        assert!(
            received.iter().any(|r| r.header("webhook-id") == id),
            "audit event {id} was not delivered"
        );
    }
}

async fn a_failing_receiver_gets_each_event_until_it_accepts_it_once(backend: Backend) {
    let app = spawn(backend, "0.3,0.3,0.3,0.3,0.3").await;
    // Each event fails three times, then is accepted.
    let receiver =
        Receiver::start(0, Arc::new(|_, before| if before < 3 { 500 } else { 200 })).await;
    let hook = register(&app, &receiver.url, &["connection.created"]).await;
    let hook_id = hook["id"].as_str().unwrap();
    integration(&app).await;
    let vault = app.create_vault("u-retry").await;
    deposit(&app, &vault).await;
    deposit(&app, &vault).await;

    let received = receiver
        .wait_for("two accepted events", Duration::from_secs(60), |r| {
            accepted(r).len() >= 2
        })
        .await;
    // A little longer, to catch any extra attempt after an acceptance.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received_later = receiver.received();
    assert_eq!(
        received_later.len(),
        received.len(),
        "sent after acceptance"
    );
    let ids = accepted_once(&received_later);
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let attempts: Vec<u16> = received_later
            .iter()
            .filter(|r| r.header("webhook-id") == id)
            .map(|r| r.answered)
            .collect();
        assert_eq!(attempts, [500, 500, 500, 200], "attempts of {id}");
    }
    let deliveries: Value = app
        .get(
            &app.partner.key,
            &format!("/v1/webhooks/{hook_id}/deliveries"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = deliveries["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{deliveries}");
    for delivery in data {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 4, "{delivery}");
        assert_eq!(delivery["last_status_code"], 200, "{delivery}");
        assert!(ids.contains(&delivery["event_id"].as_str().unwrap().to_owned()));
    }
}

async fn an_event_outlives_a_killed_server(backend: Backend) {
    let mut app = spawn(backend, "1").await;
    // A port with nobody listening: the receiver is down during the change.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    register(&app, &url, &["connection.created"]).await;
    integration(&app).await;
    let vault = app.create_vault("u-crash").await;
    let connection = deposit(&app, &vault).await;
    app.server.kill();

    let receiver = Receiver::start(port, Arc::new(|_, _| 200)).await;
    app.server = Server::start(&app.env)
        .await
        .unwrap_or_else(|log| panic!("restart failed:\n{log}"));
    let received = receiver
        .wait_for("the event after a restart", Duration::from_secs(90), |r| {
            !accepted(r).is_empty()
        })
        .await;
    let ids = accepted_once(&received);
    assert_eq!(ids, audit_ids(&app, "connection.created").await);
    let body: Value = serde_json::from_slice(&accepted(&received)[0].body).unwrap();
    assert_eq!(body["data"]["connection_id"], connection.as_str());
}

async fn an_endpoint_that_always_fails_is_disabled(backend: Backend) {
    let app = spawn(backend, "0.2,0.2").await;
    let receiver = Receiver::answering(503).await;
    let hook = register(&app, &receiver.url, &["connection.created"]).await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    integration(&app).await;
    let vault = app.create_vault("u-dead").await;
    deposit(&app, &vault).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let shown = loop {
        let shown: Value = app
            .get(&app.partner.key, &format!("/v1/webhooks/{hook_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if shown["status"] == "disabled" {
            break shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never disabled: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(shown["disabled_at"].is_string(), "{shown}");
    let received = receiver.received();
    assert_eq!(received.len(), 3, "one attempt and two retries");
    let deliveries: Value = app
        .get(
            &app.partner.key,
            &format!("/v1/webhooks/{hook_id}/deliveries"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deliveries["data"][0]["status"], "failed", "{deliveries}");
    assert_eq!(deliveries["data"][0]["attempts"], 3, "{deliveries}");
    assert_eq!(deliveries["data"][0]["last_status_code"], 503);
    assert_eq!(audit_ids(&app, "webhook.disabled").await.len(), 1);
    let warned = app.server.logs().lines().any(|line| {
        line.contains("\"WARN\"") && line.contains(&hook_id) && line.contains("disabled")
    });
    assert!(warned, "no WARN names the disabled webhook");

    // Nothing more is sent to a disabled endpoint.
    deposit(&app, &vault).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 3, "sent to a disabled endpoint");
}
