//! The client against a loopback HTTP server with scripted answers: retries, `Retry-After`,
//! `Idempotency-Key` reuse, problem details and pagination over real HTTP.

use std::time::{Duration, Instant};

use connect_sdk::types::CreateVault;
use connect_sdk::{Client, ConnectApi, Error, PageParams, RetryPolicy, VaultParams};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer, retry: RetryPolicy) -> Client {
    Client::builder(server.uri(), "acs_test_key_canary")
        .retry(retry)
        .build()
        .unwrap()
}

fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    }
}

fn vault(id: &str) -> Value {
    json!({"id": id, "external_user_id": format!("u-{id}"), "metadata": {}, "status": "active",
        "created_at": "2026-12-03T18:00:00Z", "revoked_at": null})
}

fn problem(status: u16, code: &str, retryable: bool) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/problem+json")
        .insert_header("connect-request-id", "req_1")
        .set_body_json(json!({
            "type": format!("urn:agentsecrets-connect:problem:{code}"), "title": "t",
            "status": status, "detail": "d", "code": code, "retryable": retryable}))
}

#[tokio::test]
async fn a_create_retried_after_503_and_429_sends_one_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/vaults"))
        .respond_with(problem(503, "unavailable", true).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/vaults"))
        .respond_with(problem(429, "rate_limited", true).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/vaults"))
        .and(header("authorization", "Bearer acs_test_key_canary"))
        .respond_with(ResponseTemplate::new(201).set_body_json(vault("vlt_1")))
        .mount(&server)
        .await;
    let client = client(&server, quick(3));
    let started = Instant::now();

    let created = client
        .vaults()
        .create(&CreateVault {
            external_user_id: "u-1".into(),
            metadata: None,
        })
        .await
        .unwrap();

    assert_eq!(created.id, "vlt_1");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.headers.get("idempotency-key").unwrap().clone())
        .collect();
    assert!(keys.iter().all(|k| k == keys[0]), "{keys:?}");
}

#[tokio::test]
async fn retries_stop_after_the_last_attempt_with_the_typed_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/vaults/vlt_1"))
        .respond_with(problem(503, "unavailable", true))
        .mount(&server)
        .await;
    let client = client(&server, quick(2));

    let error = client.vaults().get("vlt_1").await.unwrap_err();

    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    match &error {
        Error::Api {
            status,
            code,
            retryable,
            request_id,
            ..
        } => {
            assert_eq!(
                (*status, code.as_str(), *retryable),
                (503, "unavailable", true)
            );
            assert_eq!(request_id.as_deref(), Some("req_1"));
        }
        other => panic!("not an API error: {other:?}"),
    }
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_not_waited_for() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/vaults/vlt_1"))
        .respond_with(problem(429, "rate_limited", true).insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    let client = client(&server, quick(3));

    let error = client.vaults().get("vlt_1").await.unwrap_err();

    assert_eq!(error.code(), Some("rate_limited"));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn other_problems_are_not_retried_and_keep_their_code() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/vaults/vlt_404"))
        .respond_with(problem(404, "not_found", false))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/vaults/vlt_html"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .mount(&server)
        .await;
    let client = client(&server, quick(3));

    let missing = client.vaults().get("vlt_404").await.unwrap_err();
    let gateway = client.vaults().get("vlt_html").await.unwrap_err();

    assert!(matches!(&missing, Error::Api { status: 404, code, .. } if code == "not_found"));
    assert!(!missing.is_retryable());
    assert_eq!(gateway.code(), Some("unexpected_response"));
    assert!(gateway.is_retryable());
    assert!(!format!("{gateway}").contains("bad gateway"));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_for_a_get_but_not_for_a_proxied_post() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(format!("http://127.0.0.1:{port}"), "k")
        .retry(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
        })
        .build()
        .unwrap();

    let started = Instant::now();
    let get = client.vaults().get("vlt_1").await.unwrap_err();
    let get_took = started.elapsed();
    let started = Instant::now();
    let post = client.proxy("con_1").post("/x").send().await.unwrap_err();
    let post_took = started.elapsed();

    assert!(matches!(get, Error::Transport(_)) && get.is_retryable());
    assert!(matches!(post, Error::Transport(_)));
    assert!(
        get_took >= Duration::from_millis(600),
        "{get_took:?}: two waits of 200 and 400 ms"
    );
    assert!(
        post_took < Duration::from_millis(200),
        "{post_took:?}: a POST was repeated"
    );
}

#[tokio::test]
async fn a_list_streams_every_page_by_next_cursor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api-keys"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "key_3", "name": "n", "prefix": "acs_", "scopes": ["proxy"], "status": "active",
             "created_at": "t", "revoked_at": null}], "next_cursor": null})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api-keys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "key_1", "name": "n", "prefix": "acs_", "scopes": ["admin"], "status": "active",
             "created_at": "t", "revoked_at": null},
            {"id": "key_2", "name": "n", "prefix": "acs_", "scopes": ["audit"], "status": "revoked",
             "created_at": "t", "revoked_at": "t"}], "next_cursor": "c2"})))
        .mount(&server)
        .await;
    let client = client(&server, quick(1));

    let ids: Vec<String> = client
        .api_keys()
        .list(PageParams::limit(2))
        .into_stream()
        .map_ok(|k| k.id)
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids, ["key_1", "key_2", "key_3"]);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].url.query(), Some("limit=2&cursor=c2"));
    let page = client
        .vaults()
        .list(VaultParams::default())
        .send()
        .await
        .unwrap_err();
    assert!(matches!(page, Error::Api { status: 404, .. }), "{page:?}");
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let client = Client::builder("http://127.0.0.1:1", "acs_debug_canary")
        .build()
        .unwrap();
    let builder = Client::builder("http://127.0.0.1:1", "acs_debug_canary");

    assert!(!format!("{client:?} {builder:?}").contains("acs_debug_canary"));
}
