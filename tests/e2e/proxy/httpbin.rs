//! httpbin as the upstream: it echoes what it receives, so every injection style is checked for
//! echoes coming back redacted, and its redirects for credentials following them.

use serde_json::{Value, json};

use super::upstream::{Answer, Upstream};
use crate::peers::httpbin;
use crate::support::{Backend, TestApp};

const KEY: &str = "canary-httpbin-Key+/=9";

/// An `api_key` integration `key` at httpbin with the given injection, and a connection.
async fn connection(app: &TestApp, base: &str, key: &str, inject: Value) -> String {
    let integration = json!({"key": key, "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": base, "allowed_hosts": ["127.0.0.1"]}, "inject": inject});
    let response = app
        .post(&app.partner.key, "/v1/integrations", &integration)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let vault = app.create_vault(&format!("u-{key}")).await;
    let deposit = json!({"integration": key, "api_key": KEY});
    let created: Value = app
        .post(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connections"),
            &deposit,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// Every encoding of the key that an echo could carry.
fn forms() -> Vec<String> {
    use base64::Engine;
    let form: String = url::form_urlencoded::byte_serialize(KEY.as_bytes()).collect();
    vec![
        KEY.to_owned(),
        form.clone(),
        form.replace('+', "%20"),
        base64::engine::general_purpose::STANDARD.encode(KEY),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_credentials_come_back_redacted_in_every_style() {
    let bin = httpbin::start().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")],
    )
    .await;
    let cases = [
        ("bearer", json!({"style": "bearer"}), "headers"),
        ("bearer-token", json!({"style": "bearer"}), "bearer"),
        ("basic", json!({"style": "basic"}), "headers"),
        (
            "header",
            json!({"style": "header", "name": "X-Api-Key"}),
            "anything",
        ),
        (
            "query",
            json!({"style": "query", "name": "api_key"}),
            "anything?other=1",
        ),
        (
            "reflected",
            json!({"style": "query", "name": "X-Leak"}),
            "response-headers",
        ),
    ];
    for (case, inject, path) in cases {
        let connection = connection(&app, &bin.base, case, inject).await;

        let response = app
            .get(&app.partner.key, &format!("/v1/proxy/{connection}/{path}"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "case {case}");
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap();
        assert!(
            body.contains("[REDACTED]") || headers.contains("[REDACTED]"),
            "case {case}: nothing echoed? {body}"
        );
        for form in forms() {
            assert!(
                !body.contains(&form),
                "case {case}: the body echoes {form}: {body}"
            );
            assert!(
                !headers.contains(&form),
                "case {case}: a header echoes {form}: {headers}"
            );
        }
    }
    let audit = app
        .get(&app.partner.key, "/v1/audit?action=proxy.request")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        audit.contains("\"reason\":\"redacted\""),
        "the audit records the redaction"
    );
    for form in forms() {
        assert!(
            !audit.contains(&form) && !app.server.logs().contains(&form),
            "{form} leaked"
        );
        assert!(
            app.files_containing(form.as_bytes()).is_empty(),
            "{form} is stored in clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_server_carries_no_credential() {
    let bin = httpbin::start().await;
    let elsewhere = Upstream::start(Answer::Echo).await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")],
    )
    .await;
    let connection = connection(&app, &bin.base, "redirects", json!({"style": "bearer"})).await;
    let to = format!("{}/collect", elsewhere.base);
    let path = format!(
        "/v1/proxy/{connection}/redirect-to?url={}&status_code=307",
        url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
    );

    // The caller's own client must not follow it either, to see what the proxy answered.
    let caller = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = caller
        .get(app.url(&path))
        .bearer_auth(&app.partner.key)
        .send()
        .await
        .unwrap();

    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(status, 307, "the redirect is passed back, not followed");
    assert_eq!(location.as_deref(), Some(to.as_str()));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        elsewhere.requests().is_empty(),
        "the other server was contacted"
    );
}
