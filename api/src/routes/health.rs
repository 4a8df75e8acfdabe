//! `/healthz` (the process answers), `/readyz` (database, master key and audit writer usable)
//! and `/metrics`.

use actix_web::{HttpResponse, get as http_get, web};
use connect_sdk::types::Health;

use crate::state::AppState;

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz", security(()),
    responses((status = 200, description = "Up", body = Health)))]
#[http_get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        checks: None,
    })
}

/// Readiness: the database answers, the master key can wrap and unwrap a vault key, and the
/// audit writer that every proxied call waits on is running.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz", security(()),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A dependency is unavailable", body = Health),
    ))]
#[http_get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.db.ping().await.is_ok();
    let keys = state.keys.current();
    let master_key = keys
        .new_vault_key("vlt_readiness_probe")
        .and_then(|pair| {
            keys.open_vault_key(
                "vlt_readiness_probe",
                pair.master_version,
                Some(&pair.wrapped),
            )
        })
        .is_ok();
    let audit_writer = state.audit.is_running();
    let ready = database && master_key && audit_writer;
    let word = |ok: bool| serde_json::Value::from(if ok { "ok" } else { "unavailable" });
    let mut checks = serde_json::Map::new();
    checks.insert("database".into(), word(database));
    checks.insert("master_key".into(), word(master_key));
    checks.insert("audit_writer".into(), word(audit_writer));
    let body = Health {
        status: if ready { "ok" } else { "unavailable" }.into(),
        checks: Some(checks),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics: request counts and latencies by route pattern, method and status.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[http_get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
