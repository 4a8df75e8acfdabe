use futures_util::TryStreamExt;
use secrecy::ExposeSecret;
use serde_json::json;

use super::*;
use crate::query::{PageParams, VaultParams};
use crate::types::{
    CreateIntegration, CreateWebhook, DeliveryStatus, IntegrationAuth, Settings, WebhookEventType,
    WebhookStatus,
};

fn vault(id: &str) -> Value {
    json!({"id": id, "external_user_id": format!("u-{id}"), "metadata": {}, "status": "active",
        "created_at": "2026-12-03T18:00:00Z", "revoked_at": null})
}

#[tokio::test]
async fn calls_are_recorded_with_ids_and_without_write_only_values() {
    let mock = MockClient::new();
    mock.on("POST", "/v1/integrations").respond(&json!({
        "key": "gh", "provider": "github", "auth": {"client_id": "abc"}, "api": {},
        "inject": {"style": "bearer"}, "redirect_uri": "http://x/cb", "created_at": "t"}));
    let body = CreateIntegration {
        key: "gh".into(),
        provider: "github".into(),
        auth: IntegrationAuth {
            client_id: Some("abc".into()),
            client_secret: Some("client-secret-canary".into()),
            ..Default::default()
        },
        api: Default::default(),
        inject: None,
    };

    let created = mock.integrations().create(&body).await.unwrap();
    let sent = mock
        .proxy("con_7")
        .post("/repos")
        .query(&[("q", "query-canary")])
        .body("body-canary")
        .send()
        .await;

    assert_eq!(created.key, "gh");
    assert!(matches!(sent, Err(Error::Unscripted { .. })));
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("POST", "/v1/integrations")
    );
    assert_eq!(calls[1].path, "/v1/proxy/con_7/repos");
    let shown = format!("{calls:?}");
    for canary in ["client-secret-canary", "query-canary", "body-canary"] {
        assert!(!shown.contains(canary), "{canary} recorded: {shown}");
    }
}

#[tokio::test]
async fn scripts_answer_in_order_and_a_scripted_error_is_typed() {
    let mock = MockClient::new();
    mock.on("GET", "/v1/vaults/*").fail_with(Problem {
        problem_type: "urn:agentsecrets-connect:problem:rate_limited".into(),
        title: "Too many requests".into(),
        status: 429,
        detail: "slow down".into(),
        code: "rate_limited".into(),
        field: None,
        existing_id: None,
        retryable: true,
    });
    mock.on("GET", "/v1/vaults/*").respond(&vault("vlt_1"));

    let first = mock.vaults().get("vlt_1").await.unwrap_err();
    let second = mock.vaults().get("vlt_1").await.unwrap();
    let third = mock.vaults().get("vlt_1").await.unwrap_err();

    assert!(matches!(
        &first,
        Error::Api { status: 429, code, retryable: true, .. } if code == "rate_limited"
    ));
    assert!(first.is_retryable());
    assert_eq!(second.id, "vlt_1");
    assert!(
        matches!(&third, Error::Unscripted { method, path } if method == "GET" && path == "/v1/vaults/vlt_1"),
        "{third:?}"
    );
}

#[tokio::test]
async fn streams_follow_next_cursor_across_scripted_pages() {
    let mock = MockClient::new();
    mock.on("GET", "/v1/vaults")
        .respond(&json!({"data": [vault("vlt_1"), vault("vlt_2")], "next_cursor": "c1"}));
    mock.on("GET", "/v1/vaults")
        .respond(&json!({"data": [vault("vlt_3")], "next_cursor": null}));

    let ids: Vec<String> = mock
        .vaults()
        .list(VaultParams {
            external_user_id: None,
            page: PageParams::limit(2),
        })
        .into_stream()
        .map_ok(|v| v.id)
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids, ["vlt_1", "vlt_2", "vlt_3"]);
    let queries: Vec<_> = mock.calls().into_iter().map(|c| c.query).collect();
    assert_eq!(
        queries,
        vec![
            vec![("limit".to_owned(), "2".to_owned())],
            vec![
                ("limit".to_owned(), "2".to_owned()),
                ("cursor".to_owned(), "c1".to_owned())
            ],
        ]
    );
}

#[tokio::test]
async fn always_answers_every_call_and_empty_answers_decode_as_unit() {
    let mock = MockClient::new();
    mock.on("PUT", "/v1/settings").always().respond(&Settings {
        allowed_return_urls: vec!["https://app.example.com/done".into()],
    });
    mock.on("DELETE", "/v1/integrations/*").respond_empty();
    mock.on("GET", "/v1/proxy/con_1/**")
        .respond_proxy(201, "made");

    for _ in 0..3 {
        let stored = mock
            .settings()
            .put(&Settings {
                allowed_return_urls: vec![],
            })
            .await
            .unwrap();
        assert_eq!(stored.allowed_return_urls.len(), 1);
    }
    mock.integrations().delete("gh").await.unwrap();
    let proxied = mock.proxy("con_1").get("/a/b").send().await.unwrap();

    assert_eq!((proxied.status, proxied.text().as_str()), (201, "made"));
    assert_eq!(mock.calls().len(), 5);
}

#[tokio::test]
async fn an_id_that_is_not_one_segment_is_refused_before_any_call() {
    let mock = MockClient::new();

    for id in ["", "../api-keys", "vlt_1?x=1", "a b"] {
        let error = mock.vaults().get(id).await.unwrap_err();
        assert!(
            matches!(error, Error::InvalidRequest(_)),
            "{id:?}: {error:?}"
        );
    }
    let proxied = mock.proxy("con/1").get("/x").send().await.unwrap_err();

    assert!(matches!(proxied, Error::InvalidRequest(_)));
    assert!(mock.calls().is_empty());
}

fn webhook(id: &str, status: &str) -> Value {
    json!({"id": id, "url": "https://hooks.example.com/in", "events": ["connection.created"],
        "status": status, "created_at": "2026-12-03T18:00:00Z", "disabled_at": null})
}

#[tokio::test]
async fn webhooks_hand_over_the_secret_once_as_a_secret_and_stream_deliveries() {
    let secret = "whsec_bW9jay1zaWduaW5nLXNlY3JldC1jYW5hcnk=";
    let mock = MockClient::new();
    let mut created = webhook("whk_1", "active");
    created["secret"] = json!(secret);
    mock.on("POST", "/v1/webhooks")
        .respond_with_status(201, &created);
    mock.on("GET", "/v1/webhooks")
        .respond(&json!({"data": [webhook("whk_1", "active")], "next_cursor": "c1"}));
    mock.on("GET", "/v1/webhooks")
        .respond(&json!({"data": [webhook("whk_2", "disabled")], "next_cursor": null}));
    mock.on("GET", "/v1/webhooks/*")
        .respond(&webhook("whk_1", "active"));
    mock.on("GET", "/v1/webhooks/*/deliveries")
        .respond(&json!({"data": [{
        "event_id": "evt_1", "event_type": "connection.created", "status": "delivered",
        "attempts": 2, "last_status_code": 200, "last_error": null, "next_attempt_at": null,
        "created_at": "2026-12-03T18:00:00Z", "delivered_at": "2026-12-03T18:00:05Z"}],
        "next_cursor": null}));
    mock.on("DELETE", "/v1/webhooks/*")
        .respond(&webhook("whk_1", "deleted"));

    let new = mock
        .webhooks()
        .create(&CreateWebhook {
            url: "https://hooks.example.com/in".into(),
            events: vec![WebhookEventType::ConnectionCreated],
        })
        .await
        .unwrap();
    let listed: Vec<_> = mock
        .webhooks()
        .list(PageParams::limit(1))
        .into_stream()
        .map_ok(|w| (w.id, w.status))
        .try_collect()
        .await
        .unwrap();
    let got = mock.webhooks().get("whk_1").await.unwrap();
    let deliveries: Vec<_> = mock
        .webhooks()
        .deliveries("whk_1", PageParams::default())
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    let deleted = mock.webhooks().delete("whk_1").await.unwrap();
    let refused = mock
        .webhooks()
        .deliveries("../vaults", PageParams::default());

    assert_eq!(new.webhook.id, "whk_1");
    assert_eq!(new.secret.expose_secret(), secret);
    assert!(!format!("{new:?}").contains(secret), "{new:?}");
    assert_eq!(
        listed,
        [
            ("whk_1".to_owned(), WebhookStatus::Active),
            ("whk_2".to_owned(), WebhookStatus::Disabled)
        ]
    );
    assert_eq!(got.events, [WebhookEventType::ConnectionCreated]);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].status, deliveries[0].attempts),
        (DeliveryStatus::Delivered, 2)
    );
    assert_eq!(deleted.status, WebhookStatus::Deleted);
    assert!(matches!(
        refused.send().await,
        Err(Error::InvalidRequest(_))
    ));
    let calls = mock.calls();
    let made: Vec<_> = calls
        .iter()
        .map(|c| (c.method.as_str(), c.path.as_str()))
        .collect();
    assert_eq!(
        made,
        [
            ("POST", "/v1/webhooks"),
            ("GET", "/v1/webhooks"),
            ("GET", "/v1/webhooks"),
            ("GET", "/v1/webhooks/whk_1"),
            ("GET", "/v1/webhooks/whk_1/deliveries"),
            ("DELETE", "/v1/webhooks/whk_1"),
        ]
    );
    assert_eq!(
        calls[0].body,
        Some(json!({"url": "https://hooks.example.com/in", "events": ["connection.created"]}))
    );
    assert_eq!(calls[2].query[1], ("cursor".to_owned(), "c1".to_owned()));
    assert!(
        !format!("{calls:?}").contains(secret),
        "the secret was recorded"
    );
}

#[test]
fn patterns_match_one_segment_per_star_and_the_rest_with_a_final_double_star() {
    assert!(matches("/v1/vaults/*", "/v1/vaults/vlt_1"));
    assert!(!matches("/v1/vaults/*", "/v1/vaults/vlt_1/connections"));
    assert!(!matches("/v1/vaults/*", "/v1/vaults"));
    assert!(matches("/v1/proxy/*/**", "/v1/proxy/con_1/a/b/c"));
    assert!(matches("/v1/vaults", "/v1/vaults"));
}
