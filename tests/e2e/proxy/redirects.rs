//! Redirects through the proxy: passed back unless the integration opts in; when it does, every
//! hop is vetted, at most 5 are followed, and the credential never leaves the first origin.
//! httpbin redirects where it is told; a second local server (another origin: another port)
//! records what reaches it.

use serde_json::{Value, json};

use super::upstream::{Answer, Upstream};
use crate::on_both_backends;
use crate::peers::httpbin;
use crate::support::{Backend, TestApp, expect_problem};

on_both_backends!(
    a_default_integration_passes_redirects_back_untouched,
    an_opted_in_integration_follows_redirects_on_its_own_origin_with_the_credential,
    a_hop_to_another_allowed_origin_goes_without_the_credential,
    hops_that_fail_vetting_and_a_sixth_redirect_are_refused,
);

const KEY: &str = "canary-redirect-Key+/=7";

/// Every encoding of the key that could travel or be echoed.
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

/// The proxied path of httpbin's `/redirect-to`, pointing at `to` with `status`.
fn redirect_to(to: &str, status: u16) -> String {
    let to: String = url::form_urlencoded::byte_serialize(to.as_bytes()).collect();
    format!("redirect-to?url={to}&status_code={status}")
}

struct Setup {
    app: TestApp,
    /// Kept for its lifetime: httpbin stops when this is dropped.
    _bin: httpbin::Httpbin,
    elsewhere: Upstream,
    connection: String,
    /// A client that follows no redirect itself, to see what the proxy answered.
    caller: reqwest::Client,
}

impl Setup {
    /// httpbin as the integration's API (bearer injection, allowlist `127.0.0.1`), a second
    /// server on another port, and a connection; `follow` is the integration's opt-in (`None`:
    /// not sent at all).
    async fn new(backend: Backend, follow: Option<bool>) -> Setup {
        let bin = httpbin::start().await;
        let elsewhere = Upstream::start(Answer::Echo).await;
        let app =
            TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
        let mut api = json!({"base_url": bin.base, "allowed_hosts": ["127.0.0.1"]});
        if let Some(follow) = follow {
            api["follow_redirects"] = json!(follow);
        }
        let integration = json!({"key": "hops", "provider": "custom",
            "auth": {"type": "api_key"}, "api": api, "inject": {"style": "bearer"}});
        let response = app
            .post(&app.partner.key, "/v1/integrations", &integration)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let created: Value = response.json().await.unwrap();
        assert_eq!(
            created["api"]["follow_redirects"],
            json!(follow.unwrap_or(false)),
            "the answer shows the opt-in: {created}"
        );
        let vault = app.create_vault("u-hops").await;
        let deposit = json!({"integration": "hops", "api_key": KEY});
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
        let connection = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let caller = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Setup {
            app,
            _bin: bin,
            elsewhere,
            connection,
            caller,
        }
    }

    async fn proxy(&self, method: reqwest::Method, path: &str, body: &str) -> reqwest::Response {
        let url = self
            .app
            .url(&format!("/v1/proxy/{}/{path}", self.connection));
        self.caller
            .request(method, url)
            .bearer_auth(&self.app.partner.key)
            .header("content-type", "text/plain")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.proxy(reqwest::Method::GET, path, "").await
    }

    /// The last `proxy.request` audit event.
    async fn last_audit(&self) -> Value {
        let body: Value = self
            .app
            .get(&self.app.partner.key, "/v1/audit?action=proxy.request")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"].as_array().unwrap().last().unwrap().clone()
    }

    /// Nothing the service said or stored carries the key.
    fn assert_no_leak(&self) {
        for form in forms() {
            assert!(!self.app.server.logs().contains(&form), "a log has {form}");
            assert!(
                self.app.files_containing(form.as_bytes()).is_empty(),
                "{form} is stored in clear"
            );
        }
    }
}

/// Waits briefly, then the requests the second server received.
async fn received(elsewhere: &Upstream) -> Vec<String> {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    elsewhere.requests().into_iter().map(|s| s.head).collect()
}

async fn a_default_integration_passes_redirects_back_untouched(backend: Backend) {
    let setup = Setup::new(backend, None).await;
    let to = format!("{}/collect", setup.elsewhere.base);

    for status in [302, 307] {
        let response = setup.get(&redirect_to(&to, status)).await;

        assert_eq!(response.status(), status, "passed back, not followed");
        let location = response
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(location, to, "case {status}");
    }
    let same_origin = setup.get("redirect/1").await;
    assert_eq!(same_origin.status(), 302, "a same-origin redirect too");
    assert!(
        received(&setup.elsewhere).await.is_empty(),
        "the other server was contacted"
    );
    let read: Value = setup
        .app
        .get(&setup.app.partner.key, "/v1/integrations/hops")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["api"]["follow_redirects"], false, "{read}");

    // An opt-in that is not a boolean is refused, naming the field, and stores nothing.
    let bad = json!({"key": "bad", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": "https://api.example.com", "allowed_hosts": ["api.example.com"],
            "follow_redirects": "yes"}});
    let response = setup
        .app
        .post(&setup.app.partner.key, "/v1/integrations", &bad)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400, "invalid_json").await;
    assert!(
        problem.to_string().contains("api.follow_redirects"),
        "{problem}"
    );
    let missing = setup
        .app
        .get(&setup.app.partner.key, "/v1/integrations/bad")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

async fn an_opted_in_integration_follows_redirects_on_its_own_origin_with_the_credential(
    backend: Backend,
) {
    // Created without the opt-in, then opted in by PATCH (allowed with a live connection).
    let setup = Setup::new(backend, Some(false)).await;
    let patched = setup
        .app
        .http
        .patch(setup.app.url("/v1/integrations/hops"))
        .bearer_auth(&setup.app.partner.key)
        .json(&json!({"api": {"follow_redirects": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    let read: Value = setup
        .app
        .get(&setup.app.partner.key, "/v1/integrations/hops")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["api"]["follow_redirects"], true, "{read}");

    // /redirect-to → /bearer: httpbin checks the token on the final hop and echoes it back.
    let response = setup.get(&redirect_to("/bearer", 302)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["authenticated"], true,
        "the final hop had the credential: {body}"
    );
    assert_eq!(body["token"], "[REDACTED]", "the echo is redacted: {body}");
    let event = setup.last_audit().await;
    assert_eq!(
        (
            event["host"].as_str(),
            event["path"].as_str(),
            event["status"].as_i64()
        ),
        (Some("127.0.0.1"), Some("/bearer"), Some(200)),
        "the audit names the final hop: {event}"
    );

    // Five hops are followed; the last one echoes the injected header, redacted.
    let response = setup.get("redirect/5").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["headers"]["Authorization"], "Bearer [REDACTED]",
        "{body}"
    );
    assert_eq!(setup.last_audit().await["path"], "/get");

    // 303 turns a POST into a GET without its body; 307 keeps both.
    let cases = [(303, "GET", ""), (307, "POST", "caller-body")];
    for (status, method, data) in cases {
        let path = redirect_to("/anything", status);
        let response = setup
            .proxy(reqwest::Method::POST, &path, "caller-body")
            .await;

        assert_eq!(response.status(), 200, "case {status}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["method"], method, "case {status}: {body}");
        assert_eq!(body["data"], data, "case {status}: {body}");
        assert_eq!(
            body["headers"]["Authorization"], "Bearer [REDACTED]",
            "case {status}: {body}"
        );
    }
    setup.assert_no_leak();
}

async fn a_hop_to_another_allowed_origin_goes_without_the_credential(backend: Backend) {
    let setup = Setup::new(backend, Some(true)).await;
    let to = format!("{}/collect", setup.elsewhere.base);

    let response = setup
        .proxy(reqwest::Method::POST, &redirect_to(&to, 307), "caller-body")
        .await;

    assert_eq!(response.status(), 200, "the other server answered");
    let echoed = response.text().await.unwrap();
    assert!(
        echoed.starts_with("POST /collect "),
        "307 keeps the method: {echoed}"
    );
    let heads = received(&setup.elsewhere).await;
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(
        !head.contains("authorization"),
        "a credential header went along: {head}"
    );
    for form in forms() {
        assert!(
            !heads[0].contains(&form),
            "{form} reached the other origin: {head}"
        );
    }
    let event = setup.last_audit().await;
    assert_eq!(
        (
            event["host"].as_str(),
            event["path"].as_str(),
            event["status"].as_i64()
        ),
        (Some("127.0.0.1"), Some("/collect"), Some(200)),
        "the audit names the final hop: {event}"
    );
    setup.assert_no_leak();
}

async fn hops_that_fail_vetting_and_a_sixth_redirect_are_refused(backend: Backend) {
    let setup = Setup::new(backend, Some(true)).await;
    let port = setup.elsewhere.base.rsplit(':').next().unwrap().to_owned();
    // The metadata address (not on the allowlist; this server allows private upstreams, so the
    // allowlist is what stops it here) and a name for the second server that the allowlist
    // does not list.
    let unlisted = format!("http://localhost:{port}/collect");
    let cases = [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        (unlisted.as_str(), "localhost"),
    ];
    for (to, host) in cases {
        let response = setup.get(&redirect_to(to, 302)).await;

        expect_problem(response, 403, "host_not_allowed").await;
        let event = setup.last_audit().await;
        assert_eq!(event["reason"], "host_not_allowed", "case {to}: {event}");
        assert_eq!(
            event["host"], host,
            "the audit names the refused hop: {event}"
        );
    }
    assert!(
        received(&setup.elsewhere).await.is_empty(),
        "a refused hop was contacted"
    );

    let response = setup.get("redirect/6").await;
    expect_problem(response, 502, "too_many_redirects").await;
    assert_eq!(setup.last_audit().await["reason"], "too_many_redirects");
    setup.assert_no_leak();
}
