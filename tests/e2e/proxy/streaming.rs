//! Size, time and memory: a 100 MB body streams through in bounded memory; a silent upstream
//! hits the deadline with the right code; echoed credentials are redacted in streamed bodies.

use futures_util::StreamExt;

use super::api_key_connection;
use super::upstream::{Answer, Upstream};
use crate::support::{Backend, TestApp, expect_problem};

fn private_env() -> [(&'static str, &'static str); 2] {
    [
        ("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true"),
        ("CONNECT_UPSTREAM_TIMEOUT_SECS", "2"),
    ]
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_response_streams_through_in_bounded_memory() {
    let upstream = Upstream::start(Answer::Bytes(100 * 1024 * 1024)).await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")],
    )
    .await;
    let connection =
        api_key_connection(&app, &upstream.base, "127.0.0.1", "canary-stream-key").await;
    let before = peak_rss_kib(app.server.child.id());

    let response = app
        .get(&app.partner.key, &format!("/v1/proxy/{connection}/big"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        received += chunk.unwrap().len() as u64;
    }

    assert_eq!(received, 100 * 1024 * 1024, "every byte arrived");
    let grew = peak_rss_kib(app.server.child.id()).saturating_sub(before);
    assert!(
        grew < 48 * 1024,
        "the server's peak memory grew by {grew} KiB for a 100 MiB body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_hits_the_deadline() {
    let upstream = Upstream::start(Answer::Silent).await;
    let app = TestApp::spawn_with(Backend::Sqlite, &private_env()).await;
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", "canary-slow-key").await;

    let started = std::time::Instant::now();
    let response = app
        .get(&app.partner.key, &format!("/v1/proxy/{connection}/slow"))
        .send()
        .await
        .unwrap();

    let problem = expect_problem(response, 504, "upstream_timeout").await;
    assert_eq!(problem["retryable"], true);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_injected_key_never_reaches_the_caller_and_the_caller_cannot_override_it() {
    let upstream = Upstream::start(Answer::Echo).await;
    let app = TestApp::spawn_with(Backend::Sqlite, &private_env()).await;
    let key = "canary-echo-key-5521";
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", key).await;

    let response = app
        .http
        .get(app.url(&format!("/v1/proxy/{connection}/echo?x=1")))
        .bearer_auth(&app.partner.key)
        .header("cookie", "session=caller-cookie")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("[REDACTED]"),
        "the echoed key is redacted: {body}"
    );
    assert!(!body.contains(key));
    let head = &upstream.requests()[0].head.to_ascii_lowercase();
    assert!(
        head.contains(&format!("authorization: bearer {key}")),
        "the key was injected: {head}"
    );
    assert!(
        !head.contains(&app.partner.key.to_ascii_lowercase()),
        "the caller's own API key was forwarded"
    );
    assert!(
        !head.contains("caller-cookie"),
        "the caller's cookie was forwarded"
    );
    assert!(head.contains("x-custom: kept"));
    assert!(head.starts_with("get /echo?x=1 "), "{head}");
    assert!(
        app.files_containing(key.as_bytes()).is_empty(),
        "the key is stored in clear"
    );
    assert!(!app.server.logs().contains(key), "the key was logged");
    let audit = app
        .get(&app.partner.key, "/v1/audit?action=proxy.request")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        audit.contains("redacted") && !audit.contains(key) && !audit.contains("x=1"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_connection_is_refused() {
    let upstream = Upstream::start(Answer::Echo).await;
    let app = TestApp::spawn_with(Backend::Sqlite, &private_env()).await;
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", "canary-gone-key").await;
    let vault = app
        .get(&app.partner.key, "/v1/vaults")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let deleted = app
        .delete(
            &app.partner.key,
            &format!("/v1/vaults/{vault}/connections/{connection}"),
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = deleted.json().await.unwrap();
    assert_eq!(
        body["upstream_revocation"], "not_supported",
        "an API key has no revocation endpoint"
    );

    let response = app
        .get(&app.partner.key, &format!("/v1/proxy/{connection}/x"))
        .send()
        .await
        .unwrap();
    expect_problem(response, 409, "connection_revoked").await;
    assert!(upstream.requests().is_empty());
}
