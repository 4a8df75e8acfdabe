//! Every target of `shared/cases/ssrf-targets.txt` is refused, whether it comes from an
//! integration's base URL or from DNS.

use serde_json::json;
use tokio::net::TcpListener;

use super::api_key_connection;
use super::upstream::{Answer, Upstream};
use crate::support::{Backend, TestApp, expect_problem};

const TARGETS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/cases/ssrf-targets.txt"
);

fn targets() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(TARGETS)
        .expect("shared/cases/ssrf-targets.txt beside the checkout");
    text.lines()
        .filter(|l| l.starts_with("http"))
        .map(|l| {
            let (url, why) = l.split_once(char::is_whitespace).unwrap();
            (url.to_owned(), why.trim().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_target_is_refused_as_an_integration_base_url() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let cases = targets();
    assert!(cases.len() >= 18, "the target list was read");
    for (url, why) in cases {
        let host = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        for variant in [url.clone(), url.replacen("http://", "https://", 1)] {
            // The allowlist names the host itself, or the real API for the look-alike case.
            let allowed = if why.contains("prefix") {
                "api.github.com".to_owned()
            } else {
                host.trim_matches(['[', ']']).to_owned()
            };
            let body = json!({"key": "t", "provider": "custom", "auth": {"type": "api_key"},
                "api": {"base_url": variant, "allowed_hosts": [allowed]}});
            let response = app
                .post(&app.partner.key, "/v1/integrations", &body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 422, "{variant} ({why}) was accepted");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_loopback_is_refused_and_the_address_receives_nothing() {
    // Something listening where the name points, to prove nothing arrives there.
    let listener = TcpListener::bind("127.0.0.1:443")
        .await
        .expect("the test binds 127.0.0.1:443 (run as root)");
    let target = Upstream::serve(listener, Answer::Echo);
    let extra = [(
        "CONNECT_RESOLVE",
        "evil.test=127.0.0.1,meta.test=169.254.169.254,mixed.test=10.0.0.1",
    )];
    let app = TestApp::spawn_with(Backend::Sqlite, &extra).await;
    let connection = api_key_connection(
        &app,
        "https://evil.test/api",
        "evil.test",
        "canary-dns-key-1",
    )
    .await;

    let response = app
        .get(
            &app.partner.key,
            &format!("/v1/proxy/{connection}/anything"),
        )
        .send()
        .await
        .unwrap();

    expect_problem(response, 403, "host_not_allowed").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        target.requests().is_empty(),
        "the loopback listener received a request"
    );
    let logs = app.server.logs();
    assert!(!logs.contains("canary-dns-key-1"));
}
