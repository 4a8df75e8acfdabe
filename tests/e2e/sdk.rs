//! The SDK's client against the real server: a vault's life from creation to revocation, an
//! API-key connection used through the proxy builder, streaming pagination, problem details
//! arriving as typed errors, and a webhook endpoint registered, read and deleted.

use std::time::{Duration, Instant};

use connect_sdk::secrecy::ExposeSecret;
use connect_sdk::types::{
    CreateApiKey, CreateConnection, CreateIntegration, CreateVault, CreateWebhook, DeliveryStatus,
    IntegrationApi, IntegrationAuth, IntegrationInject, Scope, VaultStatus, WebhookEventType,
    WebhookStatus,
};
use connect_sdk::webhooks::{self as verifier, WebhookHeaders};
use connect_sdk::{AuditParams, Client, ConnectApi, Error, PageParams, RetryPolicy, VaultParams};
use futures_util::TryStreamExt;
use serde_json::Value;

use crate::on_both_backends;
use crate::peers::httpbin;
use crate::support::{Backend, TestApp};
use crate::webhooks::receiver::Receiver;

const KEY: &str = "canary-sdk-deposit-7Qx";

on_both_backends!(
    a_vault_lives_from_creation_to_revocation_through_the_sdk,
    problems_arrive_as_typed_errors_and_foreign_ids_are_not_found,
    a_webhook_is_registered_read_and_deleted_through_the_sdk,
);

fn client_for(app: &TestApp, key: &str) -> Client {
    Client::builder(app.server.base.clone(), key.to_owned())
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn new_vault(user: &str) -> CreateVault {
    CreateVault {
        external_user_id: user.into(),
        metadata: None,
    }
}

async fn a_vault_lives_from_creation_to_revocation_through_the_sdk(backend: Backend) {
    let bin = httpbin::start().await;
    let app = TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
    let client = client_for(&app, &app.partner.key);

    // A vault, and four more so that a list of two per page spans three pages.
    let vault = client.vaults().create(&new_vault("u-sdk")).await.unwrap();
    assert!(vault.id.starts_with("vlt_"), "{vault:?}");
    assert_eq!(vault.status, VaultStatus::Active);
    for n in 0..4 {
        client
            .vaults()
            .create(&new_vault(&format!("u-more-{n}")))
            .await
            .unwrap();
    }
    let first = client
        .vaults()
        .list(VaultParams {
            page: PageParams::limit(2),
            ..Default::default()
        })
        .send()
        .await
        .unwrap();
    assert_eq!(first.data.len(), 2);
    assert!(first.next_cursor.is_some(), "one page holds everything?");
    let streamed: Vec<String> = client
        .vaults()
        .list(VaultParams {
            page: PageParams::limit(2),
            ..Default::default()
        })
        .into_stream()
        .map_ok(|v| v.id)
        .try_collect()
        .await
        .unwrap();
    let mut unique = streamed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((streamed.len(), unique.len()), (5, 5), "{streamed:?}");
    assert!(streamed.contains(&vault.id));

    // An API-key integration on httpbin, and a deposit.
    let integration = CreateIntegration {
        key: "echo".into(),
        provider: "custom".into(),
        auth: IntegrationAuth {
            auth_type: Some("api_key".into()),
            ..Default::default()
        },
        api: IntegrationApi {
            base_url: Some(bin.base.clone()),
            allowed_hosts: Some(vec!["127.0.0.1".into()]),
            ..Default::default()
        },
        inject: Some(IntegrationInject {
            style: "header".into(),
            name: Some("X-Api-Key".into()),
        }),
    };
    client.integrations().create(&integration).await.unwrap();
    let deposit = CreateConnection {
        integration: "echo".into(),
        api_key: KEY.into(),
    };
    let connection = client
        .connections()
        .deposit(&vault.id, &deposit)
        .await
        .unwrap();
    assert_eq!(
        (connection.vault_id.as_str(), connection.status.as_str()),
        (vault.id.as_str(), "active")
    );
    let listed: Vec<_> = client
        .connections()
        .list(&vault.id, PageParams::default())
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, connection.id);

    // Through the proxy: httpbin echoes the request, the injected key comes back redacted.
    let echoed = client
        .proxy(&connection.id)
        .post("/anything")
        .header("X-Trace", "sdk-e2e")
        .query(&[("page", "2")])
        .json(&serde_json::json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status, 200, "{}", echoed.text());
    assert!(echoed.request_id().is_some());
    let body: Value = echoed.json().unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["args"]["page"], "2");
    assert_eq!(body["headers"]["X-Trace"], "sdk-e2e");
    assert_eq!(body["json"]["hello"], "world");
    assert_eq!(body["headers"]["X-Api-Key"], "[REDACTED]");
    assert!(!echoed.text().contains(KEY));
    let upstream_error = client
        .proxy(&connection.id)
        .get("/status/418")
        .send()
        .await
        .unwrap();
    assert_eq!(
        upstream_error.status, 418,
        "an upstream status is an answer"
    );

    // Revoked: the proxy refuses with a typed code.
    let revoked = client
        .connections()
        .delete(&vault.id, &connection.id)
        .await
        .unwrap();
    assert_eq!(revoked.status, "revoked");
    let refused = client
        .proxy(&connection.id)
        .get("/anything")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Api { code, retryable: false, .. } if code == "connection_revoked"),
        "{refused:?}"
    );

    let deleted = client.vaults().delete(&vault.id).await.unwrap();
    assert_eq!(deleted.status, VaultStatus::Revoked);
    let after = client.vaults().get(&vault.id).await.unwrap();
    assert_eq!(after.status, VaultStatus::Revoked);

    // The audit stream saw it all, its chain holds, and the key went nowhere in clear.
    let actions: Vec<String> = client
        .audit()
        .list(AuditParams {
            vault_id: Some(vault.id.clone()),
            page: PageParams::limit(2),
            ..Default::default()
        })
        .into_stream()
        .map_ok(|e| e.action)
        .try_collect()
        .await
        .unwrap();
    for action in ["vault.created", "proxy.request", "vault.revoked"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    let verified = client.audit().verify().await.unwrap();
    assert!(verified.ok, "{verified:?}");
    assert!(!app.server.logs().contains(KEY), "the key is in the log");
    assert!(app.files_containing(KEY.as_bytes()).is_empty());
}

async fn problems_arrive_as_typed_errors_and_foreign_ids_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = client_for(&app, &app.partner.key);
    let vault = client.vaults().create(&new_vault("u-1")).await.unwrap();

    let duplicate = client.vaults().create(&new_vault("u-1")).await.unwrap_err();
    let invalid = client.vaults().create(&new_vault("")).await.unwrap_err();
    let other = app.new_partner("globex");
    let foreign = client_for(&app, &other.key).vaults().get(&vault.id).await;
    let foreign_list = client_for(&app, &other.key)
        .connections()
        .list(&vault.id, PageParams::default())
        .send()
        .await;

    match &duplicate {
        Error::Api {
            status: 409,
            code,
            existing_id,
            request_id,
            ..
        } => {
            assert_eq!(code, "already_exists");
            assert_eq!(existing_id.as_deref(), Some(vault.id.as_str()));
            assert!(request_id.is_some());
        }
        other => panic!("duplicate: {other:?}"),
    }
    assert!(
        matches!(&invalid, Error::Api { status: 422, field: Some(f), .. } if f == "external_user_id"),
        "{invalid:?}"
    );
    for (case, result) in [
        ("get", foreign.map(|_| ())),
        ("list", foreign_list.map(|_| ())),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Api { status: 404, code, .. } if code == "not_found"),
            "{case}: {error:?}"
        );
        assert!(!error.is_retryable());
    }

    // A minted key is a secret the client hands over once; revoked, it stops working.
    let minted = client
        .api_keys()
        .create(&CreateApiKey {
            name: "sdk".into(),
            scopes: vec![Scope::Vaults],
        })
        .await
        .unwrap();
    assert!(!format!("{minted:?}").contains(minted.api_key.expose_secret()));
    let scoped = client_for(&app, minted.api_key.expose_secret());
    assert_eq!(scoped.vaults().get(&vault.id).await.unwrap().id, vault.id);
    let forbidden = scoped.audit().verify().await.unwrap_err();
    assert_eq!(
        (forbidden.status(), forbidden.code()),
        (Some(403), Some("insufficient_scope"))
    );
    let keys: Vec<_> = client
        .api_keys()
        .list(PageParams::limit(1))
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "the partner's first key and the new one");
    client.api_keys().revoke(&minted.key.id).await.unwrap();
    let refused = scoped.vaults().get(&vault.id).await.unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(401), Some("invalid_api_key"))
    );
}

async fn a_webhook_is_registered_read_and_deleted_through_the_sdk(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true"),
            ("CONNECT_WEBHOOK_RETRY_SCHEDULE", "1"),
        ],
    )
    .await;
    let client = client_for(&app, &app.partner.key);
    let receiver = Receiver::answering(204).await;

    let created = client
        .webhooks()
        .create(&CreateWebhook {
            url: receiver.url.clone(),
            events: vec![WebhookEventType::ConnectionCreated],
        })
        .await
        .unwrap();
    let secret = created.secret.expose_secret().to_owned();
    assert!(created.webhook.id.starts_with("whk_"), "{created:?}");
    assert_eq!(created.webhook.status, WebhookStatus::Active);
    assert!(secret.starts_with("whsec_"));
    assert!(!format!("{created:?}").contains(&secret), "Debug shows it");
    let other = client
        .webhooks()
        .create(&CreateWebhook {
            url: receiver.url.clone(),
            events: vec![WebhookEventType::VaultRevoked],
        })
        .await
        .unwrap();

    // Two endpoints, one per page; read back without a secret.
    let listed: Vec<String> = client
        .webhooks()
        .list(PageParams::limit(1))
        .into_stream()
        .map_ok(|w| w.id)
        .try_collect()
        .await
        .unwrap();
    let mut sorted = listed.clone();
    sorted.sort();
    let mut expected = vec![created.webhook.id.clone(), other.webhook.id.clone()];
    expected.sort();
    assert_eq!(sorted, expected, "{listed:?}");
    let got = client.webhooks().get(&created.webhook.id).await.unwrap();
    assert_eq!(got, created.webhook);
    let foreign = client_for(&app, &app.new_partner("globex").key)
        .webhooks()
        .get(&created.webhook.id)
        .await
        .unwrap_err();
    assert_eq!(
        (foreign.status(), foreign.code()),
        (Some(404), Some("not_found"))
    );

    // A change: an API-key deposit is delivered, signed with the secret handed over.
    let integration = CreateIntegration {
        key: "keys".into(),
        provider: "custom".into(),
        auth: IntegrationAuth {
            auth_type: Some("api_key".into()),
            ..Default::default()
        },
        api: IntegrationApi {
            base_url: Some("https://api.example.com".into()),
            allowed_hosts: Some(vec!["api.example.com".into()]),
            ..Default::default()
        },
        inject: None,
    };
    client.integrations().create(&integration).await.unwrap();
    let vault = client.vaults().create(&new_vault("u-hooks")).await.unwrap();
    let deposit = CreateConnection {
        integration: "keys".into(),
        api_key: KEY.into(),
    };
    let connection = client
        .connections()
        .deposit(&vault.id, &deposit)
        .await
        .unwrap();
    let received = receiver
        .wait_for("the deposit's event", Duration::from_secs(60), |r| {
            r.iter().any(|r| r.accepted())
        })
        .await;
    let request = received.iter().find(|r| r.accepted()).unwrap();
    let headers = WebhookHeaders {
        id: request.header("webhook-id"),
        timestamp: request.header("webhook-timestamp"),
        signature: request.header("webhook-signature"),
    };
    verifier::verify(&secret, &headers, &request.body, Duration::from_secs(300))
        .expect("signed with the secret the SDK handed over");
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["data"]["connection_id"], connection.id.as_str());

    // Its delivery, as the SDK reads it (the row is marked delivered just after the answer).
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivery = loop {
        let page = client
            .webhooks()
            .deliveries(&created.webhook.id, PageParams::default())
            .send()
            .await
            .unwrap();
        if let Some(d) = page
            .data
            .iter()
            .find(|d| d.status == DeliveryStatus::Delivered)
        {
            break d.clone();
        }
        assert!(Instant::now() < deadline, "never delivered: {page:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivery.event_id, headers.id);
    assert_eq!(delivery.event_type, "connection.created");
    assert_eq!(delivery.last_status_code, Some(204));
    assert!(
        delivery.attempts >= 1 && delivery.delivered_at.is_some(),
        "{delivery:?}"
    );
    let unsubscribed: Vec<_> = client
        .webhooks()
        .deliveries(&other.webhook.id, PageParams::default())
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert!(unsubscribed.is_empty(), "{unsubscribed:?}");

    // Deleted: answered as it was, then gone.
    let deleted = client.webhooks().delete(&created.webhook.id).await.unwrap();
    assert_eq!(
        (deleted.id.as_str(), deleted.status),
        (created.webhook.id.as_str(), WebhookStatus::Deleted)
    );
    let gone = client
        .webhooks()
        .get(&created.webhook.id)
        .await
        .unwrap_err();
    assert_eq!((gone.status(), gone.code()), (Some(404), Some("not_found")));
    let left: Vec<String> = client
        .webhooks()
        .list(PageParams::default())
        .into_stream()
        .map_ok(|w| w.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(left, [other.webhook.id.as_str()]);
    let logs = app.server.logs();
    assert!(!logs.contains(&secret), "the secret is in the log");
    assert!(!logs.contains(KEY), "the key is in the log");
}
