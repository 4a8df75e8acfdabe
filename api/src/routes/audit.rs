//! `/v1/audit`: the partner's hash-chained audit log. Needs the `audit` scope.

use actix_web::{HttpResponse, get as http_get, web};
use connect_broker::audit::{self, Filter};
use connect_broker::auth::Scope;
use connect_broker::ids::Kind;
use connect_broker::pagination::PageRequest;
use connect_sdk::types::{AuditEvent, AuditList, AuditVerification, BrokenLink, Problem};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Query;
use crate::state::AppState;

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListEvents {
    /// Only events about this vault.
    pub vault_id: Option<String>,
    /// Only events about this connection.
    pub connection_id: Option<String>,
    /// Only this action, e.g. `vault.created`.
    pub action: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List audit events, oldest first.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit", operation_id = "list_audit_events",
    params(ListEvents),
    responses(
        (status = 200, description = "A page of events", body = AuditList),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the audit scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["audit"]))
)]
#[http_get("/audit")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    Query(query): Query<ListEvents>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Audit)?;

    let page = PageRequest::new(Kind::Event, query.limit, query.cursor.as_deref())?;
    let filter = Filter {
        vault_id: query.vault_id,
        connection_id: query.connection_id,
        action: query.action,
    };

    let page = audit::list(&state.db, &tenant, &filter, &page).await?;

    Ok(HttpResponse::Ok().json(AuditList {
        data: page.data.into_iter().map(to_wire).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Recompute the hash chain and name the first broken link.
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "audit", operation_id = "verify_audit_chain",
    responses(
        (status = 200, description = "The verification result (`ok` false names the first broken event)", body = AuditVerification),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the audit scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
    ),
    security(("api_key" = ["audit"]))
)]
#[http_get("/audit/verify")]
pub async fn verify(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Audit)?;

    let result = audit::verify(&state.db, &tenant).await?;

    Ok(HttpResponse::Ok().json(AuditVerification {
        ok: result.ok,
        events: result.events,
        head: result.head,
        first_broken: result.first_broken.map(|b| BrokenLink {
            seq: b.seq,
            event_id: b.event_id,
            reason: b.reason.to_owned(),
        }),
    }))
}

fn to_wire(event: audit::Event) -> AuditEvent {
    AuditEvent {
        occurred_at: super::time(event.occurred_at),
        id: event.id,
        seq: event.seq,
        actor: event.actor,
        action: event.action,
        vault_id: event.vault_id,
        connection_id: event.connection_id,
        integration: event.integration,
        method: event.method,
        host: event.host,
        path: event.path,
        status: event.status,
        outcome: event.outcome,
        reason: event.reason,
        duration_ms: event.duration_ms,
        prev_hash: event.prev_hash,
        hash: event.hash,
    }
}
