//! A real OpenID provider (`oidc-provider`, started by `tests/peers/oidc-provider.mjs`) with one
//! confidential client, and a person's side of its development login and consent pages driven
//! over plain HTTP.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::{Process, require};

/// The account `consent` signs in as.
pub const DEFAULT_LOGIN: &str = "alice";

/// A running provider on 127.0.0.1; the process is killed when this is dropped.
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub issuer: String,
    child: Process,
    http: reqwest::Client,
}

/// Starts a provider whose one client is `client_id`/`client_secret` (client_secret_basic) with
/// `redirect_uris`, issuing access tokens that live `access_ttl_secs` seconds.
pub async fn start(
    client_id: &str,
    client_secret: &str,
    redirect_uris: &[String],
    access_ttl_secs: u64,
) -> OidcProvider {
    require("node_modules/oidc-provider", "oidc-provider");
    let script = require("oidc-provider.mjs", "tests/peers/oidc-provider.mjs");
    let env = [
        ("PORT", "0".to_owned()),
        ("CLIENT_ID", client_id.to_owned()),
        ("CLIENT_SECRET", client_secret.to_owned()),
        ("REDIRECT_URIS", redirect_uris.join(",")),
        ("ACCESS_TOKEN_TTL", access_ttl_secs.to_string()),
    ];
    let script = script.display().to_string();
    let mut child = Process::spawn("oidc-provider", "node", &[&script], &env);
    let issuer = child
        .wait_for(Duration::from_secs(30), |stdout| {
            let line = stdout.lines().next()?;
            let started: Value = serde_json::from_str(line).ok()?;
            started["issuer"].as_str().map(str::to_owned)
        })
        .await;
    OidcProvider {
        issuer,
        child,
        http: reqwest::Client::new(),
    }
}

impl OidcProvider {
    /// `issuer` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// What the provider wrote to stderr so far (its warnings and errors).
    pub fn logs(&self) -> String {
        self.child.stderr()
    }

    /// How many token requests arrived, as (authorization_code, refresh_token), failed ones
    /// included.
    pub async fn token_requests(&self) -> (u64, u64) {
        let stats: Value = self
            .http
            .get(self.url("/__stats"))
            .send()
            .await
            .expect("GET /__stats")
            .json()
            .await
            .expect("/__stats answers JSON");
        let count = |grant: &str| {
            stats["token_requests"][grant]
                .as_u64()
                .unwrap_or_else(|| panic!("/__stats has no count for {grant}: {stats}"))
        };
        (count("authorization_code"), count("refresh_token"))
    }

    /// Whether the provider's introspection endpoint calls `token` active.
    pub async fn introspect(&self, client_id: &str, client_secret: &str, token: &str) -> bool {
        let response = self
            .http
            .post(self.url("/token/introspection"))
            .basic_auth(client_id, Some(client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("POST /token/introspection");
        assert_eq!(response.status(), 200, "introspection status");
        let body: Value = response.json().await.expect("introspection JSON");
        body["active"]
            .as_bool()
            .unwrap_or_else(|| panic!("introspection answer without `active`: {body}"))
    }

    /// Signs in as [`DEFAULT_LOGIN`] at `authorize_url` and approves or declines the consent;
    /// see [`OidcProvider::consent_as`].
    pub async fn consent(&self, authorize_url: &str, approve: bool) -> String {
        self.consent_as(authorize_url, DEFAULT_LOGIN, approve).await
    }

    /// Plays the person at `authorize_url`: signs in on the development login page as `login`
    /// (any password works), then presses Continue on the consent page, or cancels it when
    /// `approve` is false. Every step runs in one fresh cookie jar, redirects followed by hand.
    ///
    /// Returns the first redirect that leaves the provider: the client's redirect URI with
    /// `code`, `state` and `iss`, or with `error=access_denied` when declined.
    pub async fn consent_as(&self, authorize_url: &str, login: &str, approve: bool) -> String {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("cookie-keeping HTTP client");
        let mut url = Url::parse(authorize_url).expect("authorize URL");
        let mut form: Option<Vec<(&str, &str)>> = None;

        for _ in 0..20 {
            let request = match form.take() {
                Some(fields) => browser.post(url.clone()).form(&fields),
                None => browser.get(url.clone()),
            };
            let response = request.send().await.expect("request to the provider");
            let status = response.status();

            if status.is_redirection() {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_else(|| panic!("{status} without a Location from {url}"));
                let next = url.join(location).expect("Location is a URL");
                if !self.serves(&next) {
                    return next.to_string();
                }
                url = next;
                continue;
            }

            let page = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "{status} from {url}:\n{page}");
            if page.contains(r#"name="prompt" value="login""#) {
                form = Some(vec![
                    ("prompt", "login"),
                    ("login", login),
                    ("password", "any password"),
                ]);
            } else if page.contains(r#"name="prompt" value="consent""#) {
                if approve {
                    form = Some(vec![("prompt", "consent")]);
                } else {
                    url = url
                        .join(&format!("{}/abort", url.path()))
                        .expect("abort URL");
                }
            } else {
                panic!("neither a login nor a consent page at {url}:\n{page}");
            }
        }
        panic!("the provider never redirected back to the client from {authorize_url}");
    }

    /// Whether `url` is one of this provider's own pages.
    fn serves(&self, url: &Url) -> bool {
        url.as_str() == self.issuer || url.as_str().starts_with(&format!("{}/", self.issuer))
    }
}
