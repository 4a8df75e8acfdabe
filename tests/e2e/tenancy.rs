//! Tenant isolation: another partner's objects look exactly like missing ones.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, dep};

on_both_backends!(another_partners_ids_answer_404_and_reveal_nothing);

async fn another_partners_ids_answer_404_and_reveal_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = &app.partner;
    let vault = app.create_vault("u-private").await;
    let minted: Value = app
        .post(
            &owner.key,
            "/v1/api-keys",
            &json!({"name": "agent", "scopes": ["vaults"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = minted["id"].as_str().unwrap().to_owned();
    let integration = json!({"key": "owned", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": "https://api.example.com", "allowed_hosts": ["api.example.com"]}});
    let created = app
        .post(&owner.key, "/v1/integrations", &integration)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let db = app.db.connect().await;
    let tenant = connect_broker::auth::Tenant::operator(&owner.id);
    let secret = connect_broker::secret::secret_bytes(b"owner-api-key".to_vec());
    let connection =
        connect_broker::credentials::deposit(&db, &tenant, dep(&vault, "owned"), &secret)
            .await
            .unwrap();
    let hook: Value = app
        .post(
            &owner.key,
            "/v1/webhooks",
            &json!({"url": "https://93.184.215.14/hooks", "events": ["vault.revoked"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let missing_hook = "whk_01JDQ3W2ZK9V7T4S8N6M5R3P1A";
    let intruder = app.new_partner("intruder");
    let missing_vault = "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1A";
    let missing_key = "key_01JDQ3W2ZK9V7T4S8N6M5R3P1A";

    let cases: Vec<(&str, reqwest::Method, String, String)> = vec![
        (
            "get vault",
            reqwest::Method::GET,
            format!("/v1/vaults/{vault}"),
            format!("/v1/vaults/{missing_vault}"),
        ),
        (
            "delete vault",
            reqwest::Method::DELETE,
            format!("/v1/vaults/{vault}"),
            format!("/v1/vaults/{missing_vault}"),
        ),
        (
            "revoke key",
            reqwest::Method::DELETE,
            format!("/v1/api-keys/{key_id}"),
            format!("/v1/api-keys/{missing_key}"),
        ),
        (
            "get webhook",
            reqwest::Method::GET,
            format!("/v1/webhooks/{hook_id}"),
            format!("/v1/webhooks/{missing_hook}"),
        ),
        (
            "webhook deliveries",
            reqwest::Method::GET,
            format!("/v1/webhooks/{hook_id}/deliveries"),
            format!("/v1/webhooks/{missing_hook}/deliveries"),
        ),
        (
            "delete webhook",
            reqwest::Method::DELETE,
            format!("/v1/webhooks/{hook_id}"),
            format!("/v1/webhooks/{missing_hook}"),
        ),
    ];
    for (case, method, foreign, missing) in cases {
        let foreign_response = app
            .http
            .request(method.clone(), app.url(&foreign))
            .bearer_auth(&intruder.key)
            .send()
            .await
            .unwrap();
        let missing_response = app
            .http
            .request(method, app.url(&missing))
            .bearer_auth(&intruder.key)
            .send()
            .await
            .unwrap();
        assert_eq!(foreign_response.status(), 404, "case {case}");
        assert_eq!(missing_response.status(), 404, "case {case}");
        let foreign_body: Value = foreign_response.json().await.unwrap();
        let missing_body: Value = missing_response.json().await.unwrap();
        assert_eq!(
            foreign_body, missing_body,
            "case {case}: a foreign object must look missing"
        );
    }

    let lists = [
        "/v1/vaults?external_user_id=u-private".to_owned(),
        "/v1/vaults".to_owned(),
        format!("/v1/audit?vault_id={vault}"),
        "/v1/api-keys".to_owned(),
        "/v1/webhooks".to_owned(),
    ];
    for list in lists {
        let body: Value = app
            .get(&intruder.key, &list)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = body.to_string();
        assert!(
            !text.contains(&vault) && !text.contains(&key_id) && !text.contains(&hook_id),
            "{list} leaks the owner's ids: {text}"
        );
        assert!(
            !text.contains("u-private"),
            "{list} leaks the owner's user: {text}"
        );
    }

    let session = app
        .post(
            &intruder.key,
            &format!("/v1/vaults/{vault}/connect-sessions"),
            &json!({"integration": "owned"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        session.status(),
        404,
        "a connect session on another partner's vault"
    );

    // The owner's objects are untouched.
    let still: Value = app
        .get(&owner.key, &format!("/v1/vaults/{vault}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "active");
    let keys: Value = app
        .get(&owner.key, "/v1/api-keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let agent = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(agent["status"], "active");
    let hook: Value = app
        .get(&owner.key, &format!("/v1/webhooks/{hook_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hook["status"], "active");
    let con: Value = app
        .get(
            &owner.key,
            &format!("/v1/vaults/{vault}/connections/{connection}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(con["status"], "active");
    // The intruder cannot create a vault with the owner's external id being reported back.
    let own: Value = app
        .post(
            &intruder.key,
            "/v1/vaults",
            &json!({"external_user_id": "u-private"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(own["id"], vault.as_str(), "external ids are per partner");
}
