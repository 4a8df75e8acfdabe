//! The injection proxy against hostile targets, slow and huge upstreams, and revocation under
//! load.

mod httpbin;
mod last_used;
mod redirects;
mod revocation;
mod ssrf;
mod streaming;
pub mod upstream;

use serde_json::{Value, json};

use crate::support::TestApp;

/// Creates the `api_key` integration `target` pointing at `base_url`, bearer-injected.
pub async fn api_key_integration(app: &TestApp, base_url: &str, host: &str) {
    let integration = json!({"key": "target", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": base_url, "allowed_hosts": [host]}, "inject": {"style": "bearer"}});
    let response = app
        .post(&app.partner.key, "/v1/integrations", &integration)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

/// Deposits `key` for `target` in `vault` and returns the connection as answered.
pub async fn deposit(app: &TestApp, vault: &str, key: &str) -> Value {
    let deposit = json!({"integration": "target", "api_key": key});
    let response = app
        .post(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connections"),
            &deposit,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let connection: Value = response.json().await.unwrap();
    assert!(
        !connection.to_string().contains(key),
        "a deposit answer shows the key"
    );
    connection
}

/// Creates an `api_key` integration pointing at `base_url`, deposits `key`, and returns the
/// connection id.
pub async fn api_key_connection(app: &TestApp, base_url: &str, host: &str, key: &str) -> String {
    api_key_integration(app, base_url, host).await;
    let vault = app.create_vault("u-proxy").await;
    deposit(app, &vault, key).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}
