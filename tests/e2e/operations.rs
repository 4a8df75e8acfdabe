//! Operations: health, readiness, metrics, the OpenAPI document and docs page, logs, shutdown.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    health_readiness_and_metrics_answer_without_ids,
    startup_logs_one_line_with_the_choices_and_access_logs_omit_queries_and_keys,
    sigterm_stops_the_server_cleanly,
    migrate_applies_the_schema_to_an_empty_database,
);

#[tokio::test]
async fn the_committed_openapi_document_matches_the_code_and_the_served_one() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openapi/openapi.json"
    ))
    .expect("openapi/openapi.json is committed");

    let printed = app.cli(&["openapi"]);
    let served = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(printed.status.success());
    assert!(
        String::from_utf8(printed.stdout).unwrap() == committed,
        "openapi/openapi.json is out of date: run `cargo run -p connect-api -- openapi > openapi/openapi.json`"
    );
    assert!(
        served == committed,
        "/openapi.json differs from the committed document"
    );
    let doc: Value = serde_json::from_str(&committed).unwrap();
    for path in [
        "/v1/vaults",
        "/v1/vaults/{vault_id}",
        "/v1/api-keys",
        "/v1/api-keys/{key_id}",
        "/v1/audit",
        "/v1/audit/verify",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn the_docs_page_loads_its_assets_from_this_server() {
    let app = TestApp::spawn(Backend::Sqlite).await;

    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();

    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from the network"
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        assert!(html.contains(asset), "the page uses {asset}");
        let response = app
            .http
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset} is served locally");
    }
    let initializer = app
        .http
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains("/openapi.json"),
        "the page reads our document"
    );
}

async fn health_readiness_and_metrics_answer_without_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault = app.create_vault("u-metrics").await;
    app.get(&app.partner.key, &format!("/v1/vaults/{vault}"))
        .send()
        .await
        .unwrap();
    // The proxy's route is labelled by its prefix; a path that only starts like it is not.
    for path in [
        "/v1/proxy/con_01J9ZQ4M8V6W2B3C4D5E6F7G8H/user/repos",
        "/v1/proxy/con_01J9ZQ4M8V6W2B3C4D5E6F7G8H",
    ] {
        let response = app.get(&app.partner.key, path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }

    let health: Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(health["status"], "ok");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["master_key"], "ok");
    assert_eq!(ready["checks"]["audit_writer"], "ok");
    assert!(
        metrics.contains("connect_http_requests_total{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/vaults/{vault_id}\""),
        "{metrics}"
    );
    let proxy_requests = metrics
        .lines()
        .filter(|l| l.starts_with("connect_http_requests_total{"))
        .filter(|l| l.contains("route=\"/v1/proxy/{connection_id}/{path:.*}\""))
        .count();
    assert_eq!(proxy_requests, 1, "{metrics}");
    assert!(metrics.contains("route=\"unmatched\""), "{metrics}");
    assert!(
        metrics.contains("connect_http_request_duration_seconds"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("vlt_") && !metrics.contains(&app.partner.id),
        "ids in metric labels"
    );
}

async fn startup_logs_one_line_with_the_choices_and_access_logs_omit_queries_and_keys(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.get(
        &app.partner.key,
        "/v1/vaults?external_user_id=u-query-canary",
    )
    .send()
    .await
    .unwrap();
    app.http
        .get(app.url("/v1/vaults"))
        .bearer_auth("acs_wrong-key-canary")
        .send()
        .await
        .unwrap();

    let log = app.server.logs();
    let events: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();

    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["message"] == "agentsecrets-connect started")
        .collect();
    assert_eq!(started.len(), 1, "{log}");
    for field in ["database", "master_key_source", "listen", "public_url"] {
        assert!(
            started[0][field].is_string(),
            "start-up line lacks {field}: {}",
            started[0]
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["target"] == "access" && e["path"] == "/v1/vaults" && e["status"] == 200)
    );
    for secret in [
        "u-query-canary",
        "acs_wrong-key-canary",
        app.partner.key.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

async fn sigterm_stops_the_server_cleanly(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.create_vault("u-before-stop").await;

    let status = app.server.terminate();

    assert!(status.success(), "exit status {status:?}");
    assert!(app.server.logs().contains("agentsecrets-connect stopped"));
    // Every SQLite connection was closed (the last one to close folds the write-ahead log into
    // the database and removes it), the audit writer's own included.
    if backend == Backend::Sqlite {
        let wal = app.db.data_dir().join("connect.db-wal");
        assert!(
            !wal.exists(),
            "{} is left after a clean stop",
            wal.display()
        );
    }
}

async fn migrate_applies_the_schema_to_an_empty_database(backend: Backend) {
    let db = crate::support::TestDb::new(backend).await;

    let out = crate::support::cli(&db.env(), &["migrate"]);

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = db.connect().await;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM vaults")
        .fetch_one(conn.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}
