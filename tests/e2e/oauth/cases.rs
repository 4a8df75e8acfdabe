//! `shared/cases/oauth`: token and revocation responses real providers send, replayed byte for
//! byte by WireMock, each with the behaviour its `expect` asks for.

use connect_broker::secret::ExposeSecret;
use serde_json::{Value, json};

use super::{begin, browser, param, sealed_tokens};
use crate::peers::wiremock::{self, WireMock};
use crate::support::{Backend, TestApp, expect_problem};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/cases/oauth");

struct Case {
    response: Value,
}

fn case(name: &str) -> Case {
    let path = format!("{CASES}/{name}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (shared/ must sit beside the checkout)"));
    let case: Value = serde_json::from_str(&text).unwrap();
    Case {
        response: case["response"].clone(),
    }
}

impl Case {
    async fn stub(&self, mock: &WireMock, path: &str) {
        let r = &self.response;
        mock.stub(
            "POST",
            path,
            r["status"].as_u64().unwrap() as u16,
            r["content_type"].as_str().unwrap(),
            r["body"].as_str().unwrap(),
        )
        .await;
    }
}

/// A server with one vault and an integration `key` whose endpoints are WireMock paths.
struct Bench {
    app: TestApp,
    mock: WireMock,
    vault: String,
}

impl Bench {
    async fn new() -> Bench {
        let app = TestApp::spawn_for_oauth(Backend::Sqlite).await;
        let mock = wiremock::start().await;
        mock.stub(
            "GET",
            "/api/ping",
            200,
            "application/json",
            r#"{"pong":true}"#,
        )
        .await;
        let vault = app.create_vault("u-cases").await;
        Bench { app, mock, vault }
    }

    async fn integration(&self, key: &str, token_path: Option<&str>) {
        let mut auth = json!({
            "type": "oauth2", "client_id": "cases-client", "client_secret": "cases-secret",
            "authorization_url": self.mock.url("/authorize"),
            "token_url": self.mock.url(&format!("/{key}/token")),
            "revocation_url": self.mock.url(&format!("/{key}/revoke")),
            "scopes": ["read"]
        });
        if let Some(path) = token_path {
            auth["token_path"] = json!(path);
        }
        let body = json!({"key": key, "provider": "custom", "auth": auth,
            "api": {"base_url": self.mock.base, "allowed_hosts": ["127.0.0.1"]}});
        let response = self
            .app
            .post(&self.app.partner.key, "/v1/integrations", &body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }

    /// Runs a flow whose code exchange gets the stubbed answer. Returns the final response.
    async fn exchange(&self, key: &str) -> reqwest::Response {
        let b = browser();
        let authorize = begin(&self.app, &b, &self.vault, key).await;
        let state = param(&authorize, "state").unwrap();
        let callback = format!(
            "{}/oauth/callback/{}/{key}",
            self.app.server.base, self.app.partner.id
        );
        b.get(&callback)
            .query(&[("code", "code-from-provider"), ("state", &state)])
            .send()
            .await
            .unwrap()
    }

    async fn connection_of(&self, key: &str) -> Option<Value> {
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
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["integration"] == key)
            .cloned()
    }

    async fn connected(&self, key: &str) -> Value {
        let response = self.exchange(key).await;
        let status = response.status();
        let page = response.text().await.unwrap();
        assert_eq!(status, 200, "{key}: {page}");
        self.connection_of(key)
            .await
            .unwrap_or_else(|| panic!("{key}: no connection"))
    }

    async fn refused(&self, key: &str, code: &str) {
        let response = self.exchange(key).await;
        assert_eq!(response.status(), 400, "{key}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(code),
            "{key}: the error page names {code}: {page}"
        );
        assert!(
            self.connection_of(key).await.is_none(),
            "{key}: a failed exchange stored a connection"
        );
    }
}

fn seconds_until(rfc3339: &str) -> i64 {
    let at = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (at - time::OffsetDateTime::now_utc()).whole_seconds()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_file_has_a_test() {
    let tested = [
        "01-expires-in-as-string.json",
        "02-missing-token-type.json",
        "03-scope-array-lowercase-type.json",
        "04-error-with-200.json",
        "05-form-encoded-body.json",
        "06-refresh-without-new-refresh-token.json",
        "07-invalid-grant-on-refresh.json",
        "08-token-at-nested-path.json",
        "09-revoke-already-dead.json",
    ];
    for entry in std::fs::read_dir(CASES).expect("shared/cases/oauth beside the checkout") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            tested.contains(&name.as_str()),
            "{name} has no end-to-end test"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_cases_behave_as_their_expect_says() {
    let bench = Bench::new().await;
    for (key, file, path) in [
        ("c01", "01-expires-in-as-string.json", None),
        ("c02", "02-missing-token-type.json", None),
        ("c03", "03-scope-array-lowercase-type.json", None),
        ("c04", "04-error-with-200.json", None),
        ("c05", "05-form-encoded-body.json", None),
        ("c08a", "08-token-at-nested-path.json", None),
        (
            "c08b",
            "08-token-at-nested-path.json",
            Some("authed_user.access_token"),
        ),
    ] {
        bench.integration(key, path).await;
        case(file).stub(&bench.mock, &format!("/{key}/token")).await;
    }

    let c01 = bench.connected("c01").await;
    let expires = seconds_until(c01["expires_at"].as_str().unwrap());
    assert!(
        (590..=600).contains(&expires),
        "a numeric string is a number: {expires}"
    );

    let c02 = bench.connected("c02").await;
    let tokens = sealed_tokens(&bench.app, c02["id"].as_str().unwrap()).await;
    assert_eq!(tokens.token_type, "Bearer");
    assert!(
        tokens.extra.contains_key("user_id"),
        "unknown members are kept, sealed"
    );
    assert!(
        !bench.app.server.logs().contains("66748"),
        "unknown members are never logged"
    );

    let c03 = bench.connected("c03").await;
    assert_eq!(c03["scopes"], json!(["openid", "user:read:email"]));

    bench.refused("c04", "bad_verification_code").await;

    let c05 = bench.connected("c05").await;
    assert_eq!(c05["scopes"], json!(["repo", "gist"]));
    assert!(
        c05["expires_at"].is_null(),
        "no expiry given, none invented"
    );

    bench.refused("c08a", "invalid_token_response").await;
    let c08 = bench.connected("c08b").await;
    let tokens = sealed_tokens(&bench.app, c08["id"].as_str().unwrap()).await;
    assert_eq!(tokens.access_token.expose_secret(), "xoxp-c0de");

    let logs = bench.app.server.logs();
    for token in [
        "at-7f3a",
        "rt-91c2",
        "at-5d1e",
        "at-2b77",
        "rt-0aa1",
        "gho_k2v9",
        "xoxp-c0de",
    ] {
        assert!(!logs.contains(token), "{token} was logged");
        assert!(
            bench.app.files_containing(token.as_bytes()).is_empty(),
            "{token} is stored in clear"
        );
    }
}

/// A connection whose first token set expires at once, so the next proxy call refreshes.
async fn expiring_connection(bench: &Bench, key: &str) -> String {
    bench.integration(key, None).await;
    let first = r#"{"access_token":"at-first-1","refresh_token":"rt-keep-me","expires_in":1,"token_type":"Bearer"}"#;
    bench
        .mock
        .stub(
            "POST",
            &format!("/{key}/token"),
            200,
            "application/json",
            first,
        )
        .await;
    let connection = bench.connected(key).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    connection
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let bench = Bench::new().await;
    let connection = expiring_connection(&bench, "c06").await;
    case("06-refresh-without-new-refresh-token.json")
        .stub(&bench.mock, "/c06/token")
        .await;

    let response = bench
        .app
        .get(
            &bench.app.partner.key,
            &format!("/v1/proxy/{connection}/api/ping"),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let tokens = sealed_tokens(&bench.app, &connection).await;
    assert_eq!(tokens.access_token.expose_secret(), "at-new-44");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "rt-keep-me"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_on_refresh_requires_reauth_without_a_retry_storm() {
    let bench = Bench::new().await;
    let connection = expiring_connection(&bench, "c07").await;
    case("07-invalid-grant-on-refresh.json")
        .stub(&bench.mock, "/c07/token")
        .await;
    let before = bench.mock.count("POST", "/c07/token").await;

    let path = format!("/v1/proxy/{connection}/api/ping");
    for _ in 0..100 {
        let response = bench
            .app
            .get(&bench.app.partner.key, &path)
            .send()
            .await
            .unwrap();
        expect_problem(response, 409, "reauth_required").await;
    }

    assert_eq!(
        bench.mock.count("POST", "/c07/token").await - before,
        1,
        "at most one token request"
    );
    assert_eq!(
        bench.connection_of("c07").await.unwrap()["status"],
        "reauth_required"
    );
    let audit: Value = bench
        .app
        .get(
            &bench.app.partner.key,
            "/v1/audit?action=connection.reauth_required",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "reported once");
    assert_eq!(
        bench.mock.count("GET", "/api/ping").await,
        0,
        "no upstream call without a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upstream_revocation_still_destroys_the_local_credential() {
    let bench = Bench::new().await;
    let connection = expiring_connection(&bench, "c09").await;
    case("09-revoke-already-dead.json")
        .stub(&bench.mock, "/c09/revoke")
        .await;

    let path = format!("/v1/vaults/{}/connections/{connection}", bench.vault);
    let response = bench
        .app
        .delete(&bench.app.partner.key, &path)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["upstream_revocation"], "failed");
    assert_eq!(
        bench.connection_of("c09").await.unwrap()["status"],
        "revoked"
    );
    let db = bench.app.db.connect().await;
    let (sealed,): (Option<Vec<u8>>,) =
        sqlx::query_as("SELECT sealed FROM connections WHERE id = $1")
            .bind(&connection)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(sealed.is_none(), "the local ciphertext is destroyed");
    let audit: Value = bench
        .app
        .get(
            &bench.app.partner.key,
            &format!("/v1/audit?connection_id={connection}&action=connection.upstream_revocation"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"][0]["reason"], "failed", "{audit}");
    assert!(bench.mock.count("POST", "/c09/revoke").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_keeps_the_tokens_and_backs_off() {
    let bench = Bench::new().await;
    let connection = expiring_connection(&bench, "t503").await;
    bench
        .mock
        .stub("POST", "/t503/token", 503, "text/plain", "maintenance")
        .await;
    let before = bench.mock.count("POST", "/t503/token").await;
    let path = format!("/v1/proxy/{connection}/api/ping");

    let first = bench
        .app
        .get(&bench.app.partner.key, &path)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(first, 503, "upstream_unavailable").await;
    assert_eq!(problem["retryable"], true);
    let second = bench
        .app
        .get(&bench.app.partner.key, &path)
        .send()
        .await
        .unwrap();
    expect_problem(second, 503, "upstream_unavailable").await;

    assert_eq!(
        bench.mock.count("POST", "/t503/token").await - before,
        1,
        "the second call waits for the back-off"
    );
    assert_eq!(
        bench.connection_of("t503").await.unwrap()["status"],
        "active"
    );
    let tokens = sealed_tokens(&bench.app, &connection).await;
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "rt-keep-me",
        "the tokens are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_client_is_an_integration_error_not_a_user_one() {
    let bench = Bench::new().await;
    let connection = expiring_connection(&bench, "tic").await;
    bench
        .mock
        .stub(
            "POST",
            "/tic/token",
            401,
            "application/json",
            r#"{"error":"invalid_client"}"#,
        )
        .await;

    let response = bench
        .app
        .get(
            &bench.app.partner.key,
            &format!("/v1/proxy/{connection}/api/ping"),
        )
        .send()
        .await
        .unwrap();

    expect_problem(response, 502, "integration_misconfigured").await;
    assert_eq!(
        bench.connection_of("tic").await.unwrap()["status"],
        "active",
        "the user need not reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_can_be_changed_and_its_secret_stays_write_only() {
    let bench = Bench::new().await;
    bench.integration("editable", None).await;
    let path = "/v1/integrations/editable";
    let patch = |body: Value| {
        bench
            .app
            .http
            .patch(bench.app.url(path))
            .bearer_auth(&bench.app.partner.key)
            .json(&body)
            .send()
    };

    let changed =
        patch(json!({"auth": {"scopes": ["read", "write"], "client_secret": "rotated-secret-99"}}))
            .await
            .unwrap();
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["auth"]["scopes"], json!(["read", "write"]));
    assert!(!changed.to_string().contains("rotated-secret-99"));

    let refused = patch(json!({"api": {"allowed_hosts": ["evil.test"]}}))
        .await
        .unwrap();
    expect_problem(refused, 422, "validation_failed").await;
    let unknown = patch(json!({"auth": {"token_url": "https://evil.test/token"}}))
        .await
        .unwrap();
    expect_problem(unknown, 400, "invalid_json").await;
    let other = bench.app.new_partner("other");
    let foreign = bench
        .app
        .http
        .patch(bench.app.url(path))
        .bearer_auth(&other.key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(foreign, 404, "not_found").await;
    assert!(
        bench.app.files_containing(b"rotated-secret-99").is_empty(),
        "the client secret is sealed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_401_triggers_one_refresh_and_one_retry() {
    let bench = Bench::new().await;
    bench.integration("t401", None).await;
    let first = r#"{"access_token":"at-long-1","refresh_token":"rt-long-1","expires_in":3600}"#;
    bench
        .mock
        .stub("POST", "/t401/token", 200, "application/json", first)
        .await;
    let connection = bench.connected("t401").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let renewed = r#"{"access_token":"at-long-2","expires_in":3600}"#;
    bench
        .mock
        .stub("POST", "/t401/token", 200, "application/json", renewed)
        .await;
    bench
        .mock
        .stub(
            "GET",
            "/api/guarded",
            401,
            "application/json",
            r#"{"message":"Bad credentials"}"#,
        )
        .await;

    let response = bench
        .app
        .get(
            &bench.app.partner.key,
            &format!("/v1/proxy/{connection}/api/guarded"),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.status(),
        401,
        "the upstream's answer passes through"
    );
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"message":"Bad credentials"}"#
    );
    assert_eq!(
        bench.mock.count("POST", "/t401/token").await,
        2,
        "one exchange, one refresh"
    );
    assert_eq!(
        bench.mock.count("GET", "/api/guarded").await,
        2,
        "one try, one retry"
    );
    let tokens = sealed_tokens(&bench.app, &connection).await;
    assert_eq!(tokens.access_token.expose_secret(), "at-long-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_cannot_be_pointed_at_other_hosts() {
    let bench = Bench::new().await;
    let github = json!({"key": "gh", "provider": "github",
        "auth": {"client_id": "Iv1.x", "client_secret": "s"},
        "api": {"base_url": "https://evil.test", "allowed_hosts": ["evil.test"]}});
    let response = bench
        .app
        .post(&bench.app.partner.key, "/v1/integrations", &github)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["field"], "api.allowed_hosts", "{problem}");

    let connection = expiring_connection(&bench, "moving").await;
    let patch = json!({"api": {"base_url": "http://127.0.0.2:9", "allowed_hosts": ["127.0.0.2"]}});
    let response = bench
        .app
        .http
        .patch(bench.app.url("/v1/integrations/moving"))
        .bearer_auth(&bench.app.partner.key)
        .json(&patch)
        .send()
        .await
        .unwrap();
    expect_problem(response, 409, "integration_in_use").await;
    assert_eq!(
        bench.connection_of("moving").await.unwrap()["id"],
        connection.as_str()
    );
}
