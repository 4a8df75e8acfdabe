//! Bad input gets a clear problem and changes nothing.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, expect_problem};

on_both_backends!(
    bad_vault_requests_get_a_problem_and_write_nothing,
    bad_list_queries_get_a_problem,
    a_missing_integration_in_a_body_is_422_not_a_missing_vault,
    a_known_path_with_another_method_is_405_with_allow,
    a_nested_object_sent_as_an_array_is_refused
);

async fn bad_vault_requests_get_a_problem_and_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long_id = "u".repeat(10_000);
    let oversized =
        json!({"external_user_id": "u-big", "metadata": {"blob": "x".repeat(200_000)}}).to_string();
    let sql = "x'; DROP TABLE vaults; --";
    // (case, content type, body, status, code, a value that must not be echoed)
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        ("malformed JSON", "application/json", r#"{"external_user_id": "#.into(), 400, "invalid_json", ""),
        ("not an object", "application/json", r#"["u-1"]"#.into(), 400, "invalid_json", ""),
        ("empty body", "application/json", String::new(), 400, "invalid_json", ""),
        ("unknown field", "application/json", r#"{"external_user_id":"u-1","admin":true}"#.into(), 400, "invalid_json", ""),
        ("wrong type", "application/json", r#"{"external_user_id": 73914}"#.into(), 400, "invalid_json", "73914"),
        ("missing field", "application/json", r#"{"metadata": {}}"#.into(), 400, "invalid_json", ""),
        ("oversized body", "application/json", oversized, 413, "payload_too_large", ""),
        ("not JSON", "text/plain", r#"{"external_user_id":"u-1"}"#.into(), 415, "unsupported_media_type", ""),
        ("10,000 characters", "application/json", json!({"external_user_id": long_id}).to_string(), 422, "validation_failed", "uuuuuuuuuu"),
        ("control character", "application/json", json!({"external_user_id": "u\u{0007}bell"}).to_string(), 422, "validation_failed", "bell"),
        ("newline", "application/json", json!({"external_user_id": "u-1\nFORGED LOG LINE"}).to_string(), 422, "validation_failed", "FORGED"),
        ("SQL metacharacters", "application/json", json!({"external_user_id": sql}).to_string(), 422, "validation_failed", "DROP TABLE"),
        ("metadata not an object", "application/json", json!({"external_user_id": "u-1", "metadata": [1]}).to_string(), 400, "invalid_json", ""),
        ("metadata too many keys", "application/json", json!({"external_user_id": "u-1", "metadata": (0..60).map(|n| (format!("k{n}"), json!(n))).collect::<serde_json::Map<_, _>>()}).to_string(), 422, "validation_failed", ""),
    ];
    for (case, content_type, body, status, code, not_echoed) in cases {
        let response = app
            .http
            .post(app.url("/v1/vaults"))
            .bearer_auth(&app.partner.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        eprintln!("case: {case}");
        let problem = expect_problem(response, status, code).await;
        if !not_echoed.is_empty() {
            assert!(
                !problem.to_string().contains(not_echoed),
                "case {case} echoes the input: {problem}"
            );
        }
    }

    let listed: Value = app
        .get(&app.partner.key, "/v1/vaults")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]), "bad input wrote a vault");
    let audit: Value = app
        .get(&app.partner.key, "/v1/audit?action=vault.created")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["data"], json!([]), "bad input wrote an audit event");
    assert!(
        !app.server.logs().contains("FORGED LOG LINE"),
        "input reached the log"
    );
}

async fn bad_list_queries_get_a_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (
            "limit not a number",
            "/v1/vaults?limit=ten",
            400,
            "invalid_query",
        ),
        (
            "limit too large",
            "/v1/vaults?limit=1000",
            422,
            "validation_failed",
        ),
        ("limit zero", "/v1/vaults?limit=0", 422, "validation_failed"),
        (
            "forged cursor",
            "/v1/vaults?cursor=Jyk7IERST1A",
            422,
            "validation_failed",
        ),
        (
            "cursor of another list",
            "/v1/audit?cursor=dmx0XzAxSkRRM1cyWks5VjdUNFM4TjZNNVIzUDFB",
            422,
            "validation_failed",
        ),
        (
            "external id with quotes",
            "/v1/vaults?external_user_id=%27%20OR%201%3D1",
            422,
            "validation_failed",
        ),
        ("unknown route", "/v1/nothing-here", 404, "not_found"),
        (
            "malformed vault id",
            "/v1/vaults/..%2F..%2Fetc",
            404,
            "not_found",
        ),
    ];
    let named: serde_json::Value = app
        .get(&app.partner.key, "/v1/vaults?limit=ten")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        named["detail"].as_str().unwrap().contains("`limit`"),
        "the problem names the parameter: {named}"
    );
    for (case, path, status, code) in cases {
        let response = app.get(&app.partner.key, path).send().await.unwrap();
        let problem = expect_problem(response, status, code).await;
        assert!(
            !problem.to_string().contains("OR 1=1"),
            "case {case} echoes the input"
        );
    }
}

/// A deposit or connect session naming an integration the partner does not have is a bad field
/// value: 422 on `integration`. It used to answer 404, which says the vault in the URL is gone.
async fn a_missing_integration_in_a_body_is_422_not_a_missing_vault(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault = app.create_vault("u-named").await;
    let missing_vault = "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1A";
    // (case, path, body, status, code)
    let cases = [
        (
            "deposit",
            format!("/v1/vaults/{vault}/connections"),
            json!({"integration": "nope", "api_key": "k-123456"}),
            422,
            "validation_failed",
        ),
        (
            "connect session",
            format!("/v1/vaults/{vault}/connect-sessions"),
            json!({"integration": "nope"}),
            422,
            "validation_failed",
        ),
        (
            "deposit, missing vault",
            format!("/v1/vaults/{missing_vault}/connections"),
            json!({"integration": "nope", "api_key": "k-123456"}),
            404,
            "not_found",
        ),
        (
            "connect session, missing vault",
            format!("/v1/vaults/{missing_vault}/connect-sessions"),
            json!({"integration": "nope"}),
            404,
            "not_found",
        ),
    ];

    for (case, path, body, status, code) in cases {
        let response = app
            .post(&app.partner.key, &path, &body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, status, code).await;
        if status == 422 {
            assert_eq!(problem["field"], "integration", "case {case}: {problem}");
        }
    }

    let connections: Value = app
        .get(&app.partner.key, &format!("/v1/vaults/{vault}/connections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(connections["data"], json!([]), "nothing was deposited");
}

/// A documented path asked with a method it lacks answers 405 with `Allow`; an unknown path
/// stays 404.
async fn a_known_path_with_another_method_is_405_with_allow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault = app.create_vault("u-methods").await;
    // (case, method, path, Allow)
    let cases = [
        (
            "trace a collection",
            "TRACE",
            "/v1/vaults".to_owned(),
            "GET, POST",
        ),
        (
            "put a vault",
            "PUT",
            format!("/v1/vaults/{vault}"),
            "GET, DELETE",
        ),
        ("post health", "POST", "/healthz".to_owned(), "GET"),
        (
            "delete settings",
            "DELETE",
            "/v1/settings".to_owned(),
            "GET, PUT",
        ),
    ];

    for (case, method, path, allow) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .http
            .request(method, app.url(&path))
            .bearer_auth(&app.partner.key)
            .send()
            .await
            .unwrap();
        let got = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        expect_problem(response, 405, "method_not_allowed").await;
        assert_eq!(got, allow, "case {case}: Allow");
    }

    let unknown = app
        .get(&app.partner.key, "/v1/nothing-here")
        .send()
        .await
        .unwrap();
    expect_problem(unknown, 404, "not_found").await;
    let still: Value = app
        .get(&app.partner.key, &format!("/v1/vaults/{vault}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        still["status"], "active",
        "a refused method changed nothing"
    );
}

/// serde fills a struct from a JSON array; a body whose nested object (`api`, `auth`) is sent as
/// an array is refused (it used to be read as a struct of its positions and applied).
async fn a_nested_object_sent_as_an_array_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let integration = json!({"key": "arrays", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": "https://api.example.com", "allowed_hosts": ["api.example.com"]}});
    let created = app
        .post(&app.partner.key, "/v1/integrations", &integration)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // (case, method, path, body, field)
    let cases = [
        (
            "patch api",
            reqwest::Method::PATCH,
            "/v1/integrations/arrays",
            json!({"api": [null, null]}),
            "api",
        ),
        (
            "patch auth",
            reqwest::Method::PATCH,
            "/v1/integrations/arrays",
            json!({"auth": ["id", "secret", null]}),
            "auth",
        ),
        (
            "create with api",
            reqwest::Method::POST,
            "/v1/integrations",
            json!({"key": "arrays2", "provider": "custom", "auth": {"type": "api_key"},
                "api": ["https://api.example.com", ["api.example.com"]]}),
            "api",
        ),
    ];

    for (case, method, path, body, field) in cases {
        let response = app
            .http
            .request(method, app.url(path))
            .bearer_auth(&app.partner.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, 400, "invalid_json").await;
        assert_eq!(problem["field"], field, "case {case}: {problem}");
    }

    let stored: Value = app
        .get(&app.partner.key, "/v1/integrations/arrays")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["api"]["base_url"], "https://api.example.com",
        "{stored}"
    );
    let missing = app
        .get(&app.partner.key, "/v1/integrations/arrays2")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "nothing was created");
}
