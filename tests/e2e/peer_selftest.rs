//! The peers themselves, before any test trusts them: the OpenID provider runs a whole code
//! flow with PKCE, rotation and reuse detection; WireMock answers with exact bytes; httpbin
//! echoes request headers and redirects where it is told; Chromium clicks through a consent.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::peers::browser::Browser;
use crate::peers::{httpbin, oidc, wiremock};

const CLIENT_ID: &str = "connect-test";
const CLIENT_SECRET: &str = "connect-test-secret";

// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A loopback redirect URI on a port nothing listens on.
fn unused_redirect_uri() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    format!("http://127.0.0.1:{port}/callback")
}

/// A provider for the test client, whose one redirect URI nothing listens on.
async fn start_provider(access_ttl_secs: u64) -> (oidc::OidcProvider, String) {
    let redirect_uri = unused_redirect_uri();
    let provider = oidc::start(
        CLIENT_ID,
        CLIENT_SECRET,
        std::slice::from_ref(&redirect_uri),
        access_ttl_secs,
    )
    .await;
    (provider, redirect_uri)
}

fn authorize_url(provider: &oidc::OidcProvider, redirect_uri: &str, state: &str) -> String {
    let mut url = Url::parse(&provider.url("/auth")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid email profile")
        .append_pair("state", state)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

fn query(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .expect("redirect is a URL")
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Posts `form` to the token endpoint with client_secret_basic; returns status and JSON body.
async fn token(provider: &oidc::OidcProvider, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(provider.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .expect("POST /token");
    let status = response.status().as_u16();
    (status, response.json().await.expect("token endpoint JSON"))
}

/// Exchanges `code` with the RFC 7636 verifier and returns the token response.
async fn exchange(provider: &oidc::OidcProvider, redirect_uri: &str, code: &str) -> Value {
    let (status, tokens) = token(
        provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        status,
        200,
        "code exchange: {tokens}\nprovider log:\n{}",
        provider.logs()
    );
    tokens
}

fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

async fn userinfo(provider: &oidc::OidcProvider, access_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(provider.url("/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("GET /me")
}

#[tokio::test]
async fn oidc_provider_runs_a_code_flow_and_revokes_the_grant_on_refresh_token_reuse() {
    let (provider, redirect_uri) = start_provider(60).await;

    // The person signs in and approves; the redirect carries code, state and RFC 9207 iss.
    let back = provider
        .consent(&authorize_url(&provider, &redirect_uri, "s-1"), true)
        .await;
    assert!(back.starts_with(&redirect_uri), "redirect: {back}");
    assert_eq!(query(&back, "state").as_deref(), Some("s-1"));
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some(provider.issuer.as_str())
    );
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));

    // The code is exchanged with the PKCE verifier.
    let tokens = exchange(&provider, &redirect_uri, &code).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let access_1 = field(&tokens, "access_token");
    let refresh_1 = field(&tokens, "refresh_token");

    // The access token opens userinfo with the account's claims.
    let response = userinfo(&provider, &access_1).await;
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.test");
    assert!(
        provider
            .introspect(CLIENT_ID, CLIENT_SECRET, &access_1)
            .await
    );

    // One refresh rotates the refresh token.
    let (status, refreshed) = token(
        &provider,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_1),
        ],
    )
    .await;
    assert_eq!(status, 200, "refresh: {refreshed}");
    let access_2 = field(&refreshed, "access_token");
    let refresh_2 = field(&refreshed, "refresh_token");
    assert_ne!(refresh_2, refresh_1, "the refresh token was not rotated");
    assert!(
        provider
            .introspect(CLIENT_ID, CLIENT_SECRET, &refresh_2)
            .await
    );

    // Presenting the rotated one again fails and takes the whole grant with it.
    let (status, reused) = token(
        &provider,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_1),
        ],
    )
    .await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        !provider
            .introspect(CLIENT_ID, CLIENT_SECRET, &refresh_2)
            .await
    );
    assert!(
        !provider
            .introspect(CLIENT_ID, CLIENT_SECRET, &access_2)
            .await
    );
    let (status, after) = token(
        &provider,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_2),
        ],
    )
    .await;
    assert_eq!(
        (status, after["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Every token request was counted, failures included.
    assert_eq!(provider.token_requests().await, (1, 3));
}

#[tokio::test]
async fn oidc_provider_expires_access_tokens_without_leeway() {
    let (provider, redirect_uri) = start_provider(1).await;
    let back = provider
        .consent(&authorize_url(&provider, &redirect_uri, "s-2"), true)
        .await;
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = exchange(&provider, &redirect_uri, &code).await;
    assert_eq!(tokens["expires_in"], 1);
    let access = field(&tokens, "access_token");

    tokio::time::sleep(Duration::from_millis(2100)).await;

    let response = userinfo(&provider, &access).await;
    assert_eq!(response.status(), 401, "an expired token still opened /me");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "WWW-Authenticate: {challenge:?}"
    );
    assert!(!provider.introspect(CLIENT_ID, CLIENT_SECRET, &access).await);
}

#[tokio::test]
async fn oidc_provider_refuses_an_authorization_request_without_pkce() {
    let (provider, redirect_uri) = start_provider(60).await;
    let mut url = Url::parse(&provider.url("/auth")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("state", "s-3");

    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&redirect_uri), "redirect: {location}");
    assert_eq!(
        query(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query(&location, "state").as_deref(), Some("s-3"));
    assert_eq!(
        query(&location, "iss").as_deref(),
        Some(provider.issuer.as_str())
    );
}

#[tokio::test]
async fn oidc_provider_declined_consent_redirects_with_access_denied() {
    let (provider, redirect_uri) = start_provider(60).await;

    let back = provider
        .consent(&authorize_url(&provider, &redirect_uri, "s-4"), false)
        .await;

    assert!(back.starts_with(&redirect_uri), "redirect: {back}");
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("s-4"));
    assert_eq!(query(&back, "code"), None);
    assert_eq!(provider.token_requests().await, (0, 0));
}

#[tokio::test]
async fn wiremock_replays_the_exact_bytes_and_content_type_it_was_given() {
    let mock = wiremock::start().await;
    let body = "access_token=2YotnFZFEjr1zCsicMWpAA&token_type=example&expires_in=3600";
    mock.stub(
        "POST",
        "/token",
        200,
        "application/x-www-form-urlencoded",
        body,
    )
    .await;

    let response = reqwest::Client::new()
        .post(mock.url("/token"))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .expect("POST to WireMock");

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), body.as_bytes());
    assert_eq!(mock.count("POST", "/token").await, 1);
    assert_eq!(mock.count("GET", "/token").await, 0);
}

#[tokio::test]
async fn httpbin_echoes_request_headers_and_redirects_where_it_is_told() {
    let upstream = httpbin::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A request header comes back in the body of /headers.
    let response = http
        .get(upstream.url("/headers"))
        .header("X-Connect-Probe", "probe-7f3a")
        .send()
        .await
        .expect("GET /headers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("/headers answers JSON");
    assert_eq!(
        body["headers"]["X-Connect-Probe"],
        "probe-7f3a",
        "/headers: {body}\nhttpbin log:\n{}",
        upstream.logs()
    );

    // /redirect-to answers the status asked for, pointing at the URL it was given.
    let elsewhere = "http://127.0.0.1:9/collect?from=httpbin";
    let mut url = Url::parse(&upstream.url("/redirect-to")).unwrap();
    url.query_pairs_mut()
        .append_pair("url", elsewhere)
        .append_pair("status_code", "307");
    let response = http.get(url).send().await.expect("GET /redirect-to");
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], elsewhere);
}

#[tokio::test]
async fn browser_clicks_through_login_and_consent_to_the_redirect_uri() {
    let (provider, redirect_uri) = start_provider(60).await;

    let back = Browser::run_consent(
        &authorize_url(&provider, &redirect_uri, "s-5"),
        &redirect_uri,
    )
    .await
    .unwrap_or_else(|e| panic!("browser run: {e}"));

    assert!(back.starts_with(&redirect_uri), "redirect: {back}");
    assert_eq!(query(&back, "state").as_deref(), Some("s-5"));
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some(provider.issuer.as_str())
    );
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = exchange(&provider, &redirect_uri, &code).await;
    assert!(tokens["access_token"].is_string(), "tokens: {tokens}");
}
