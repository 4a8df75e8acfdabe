//! The OAuth broker against real peers: oidc-provider for the flow, refresh and revocation,
//! WireMock for the token-response quirks of `shared/cases/oauth`, and headless Chromium.

mod browser;
mod cases;
mod failures;
mod lifecycle;
mod replicas;

use connect_broker::auth::Tenant;
use connect_broker::credentials;
use connect_broker::oauth::token_response::TokenSet;
use connect_broker::secret::ExposeSecret;
use serde_json::{Value, json};

use crate::peers::oidc::{self, OidcProvider};
use crate::support::{Backend, TestApp};

pub const CLIENT_ID: &str = "connect-e2e";
pub const CLIENT_SECRET: &str = "client-secret-e2e-7f1d93";
pub const KEY: &str = "oidc";

/// A server, an OpenID provider that knows the server's callback, an integration and a vault.
pub struct World {
    pub app: TestApp,
    pub provider: OidcProvider,
    pub vault: String,
}

impl World {
    pub async fn new(backend: Backend) -> World {
        let app = TestApp::spawn_for_oauth(backend).await;
        let provider = oidc::start(CLIENT_ID, CLIENT_SECRET, &[callback_url(&app, KEY)], 5).await;
        create_integration(&app, KEY, &provider.issuer).await;
        let vault = app.create_vault("u-oauth").await;
        World {
            app,
            provider,
            vault,
        }
    }

    /// Opens a connect session and follows it to the provider; returns the authorization URL.
    pub async fn begin(&self, browser: &reqwest::Client) -> String {
        begin(&self.app, browser, &self.vault, KEY).await
    }

    /// A whole successful flow; returns the connection id.
    pub async fn connect(&self) -> String {
        let browser = browser();
        let authorize = self.begin(&browser).await;
        let callback = self.provider.consent(&authorize, true).await;
        let response = browser.get(&callback).send().await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "the callback ends on the success page"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("Connected"), "{page}");
        let connections = self.connections().await;
        connections.last().expect("a connection was stored")["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn connections(&self) -> Vec<Value> {
        let path = format!("/v1/vaults/{}/connections", self.vault);
        let body: Value = self
            .app
            .get(&self.app.partner.key, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"].as_array().unwrap().clone()
    }

    pub async fn proxy(&self, connection: &str, path: &str) -> reqwest::Response {
        self.app
            .get(
                &self.app.partner.key,
                &format!("/v1/proxy/{connection}/{path}"),
            )
            .send()
            .await
            .unwrap()
    }

    /// The tokens sealed for a connection, read with the master key as only the broker can.
    pub async fn tokens(&self, connection: &str) -> TokenSet {
        sealed_tokens(&self.app, connection).await
    }
}

pub async fn sealed_tokens(app: &TestApp, connection: &str) -> TokenSet {
    let db = app.db.connect().await;
    let tenant = Tenant::operator(&app.partner.id);
    let opened = credentials::open(&db, &app.master_ring(), &tenant, connection)
        .await
        .unwrap_or_else(|e| {
            panic!("open {connection}: {e}");
        });
    TokenSet::from_sealed_bytes(opened.secret.expose_secret()).unwrap()
}

/// The integration's callback URL on this server.
pub fn callback_url(app: &TestApp, key: &str) -> String {
    format!(
        "{}/oauth/callback/{}/{key}",
        app.server.base, app.partner.id
    )
}

/// A custom integration configured by discovery from `issuer`.
pub async fn create_integration(app: &TestApp, key: &str, issuer: &str) {
    let body = json!({
        "key": key,
        "provider": "custom",
        "auth": {
            "type": "oauth2",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "issuer": issuer,
            "scopes": ["openid", "email", "profile", "offline_access"]
        },
        "api": {"base_url": issuer, "allowed_hosts": ["127.0.0.1"]}
    });
    let response = app
        .post(&app.partner.key, "/v1/integrations", &body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let created: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["redirect_uri"], callback_url(app, key));
    assert!(
        created["auth"].get("client_secret").is_none(),
        "the client secret is write-only"
    );
    assert!(!created.to_string().contains(CLIENT_SECRET));
}

/// A browser: keeps cookies, follows no redirects (the test follows them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Creates a connect session, opens its page, and starts it; returns the provider URL.
pub async fn begin(app: &TestApp, browser: &reqwest::Client, vault: &str, key: &str) -> String {
    let created: Value = app
        .post(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connect-sessions"),
            &json!({"integration": key}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = created["url"]
        .as_str()
        .unwrap_or_else(|| panic!("connect session: {created}"))
        .to_owned();
    let page = browser.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    for (header, expected) in [
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.headers().get(header).unwrap(), expected);
    }
    assert!(
        page.headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("acme") && html.contains("/start"),
        "the page names the partner: {html}"
    );
    let start = browser.get(format!("{url}/start")).send().await.unwrap();
    assert_eq!(start.status(), 303);
    start
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Every token value of a set, for leak checks.
pub fn values(tokens: &TokenSet) -> Vec<String> {
    let mut all = vec![tokens.access_token.expose_secret().to_owned()];
    all.extend(
        tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
    );
    all.extend(
        tokens
            .id_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
    );
    all
}
