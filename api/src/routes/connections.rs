//! `/v1/vaults/{vault_id}/connect-sessions` and `/v1/vaults/{vault_id}/connections`.

use actix_web::{HttpResponse, delete as http_delete, get as http_get, post as http_post, web};
use connect_broker::auth::Scope;
use connect_broker::connections::{self, Deposited};
use connect_broker::ids::Kind;
use connect_broker::oauth::flow;
use connect_broker::pagination::PageRequest;
use connect_broker::secret::SecretString;
use connect_sdk::types::{
    ConnectSession, Connection, ConnectionDeleted, ConnectionList, CreateConnectSession,
    CreateConnection, Problem,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{IdempotencyKey, JsonBody, Query};
use crate::state::AppState;

/// Query of `GET /v1/vaults/{vault_id}/connections`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListConnections {
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Start a connect session: a single-use URL for the end user, valid 30 minutes.
#[utoipa::path(
    post, path = "/v1/vaults/{vault_id}/connect-sessions", tag = "connections", operation_id = "create_connect_session",
    params(("vault_id" = String, Path, description = "The vault's id")),
    request_body = CreateConnectSession,
    responses(
        (status = 201, description = "Created", body = ConnectSession),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the connect scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such vault or integration", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The vault is revoked", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "return_url is not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["connect"]))
)]
#[http_post("/vaults/{vault_id}/connect-sessions")]
pub async fn create_session(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<CreateConnectSession>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Connect)?;

    let created = flow::create_session(
        &state.flow(),
        &tenant,
        &path,
        &body.integration,
        body.return_url.as_deref(),
    )
    .await?;

    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(ConnectSession {
            id: created.id,
            url: created.url,
            expires_at: super::time(created.expires_at),
        }))
}

/// Deposit an API key into a vault (write-only) for an `api_key` integration.
#[utoipa::path(
    post, path = "/v1/vaults/{vault_id}/connections", tag = "connections", operation_id = "deposit_api_key",
    params(
        ("vault_id" = String, Path, description = "The vault's id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$", description = "Replays the first result for a repeated request"),
    ),
    request_body = CreateConnection,
    responses(
        (status = 201, description = "Created (the key is never returned)", body = Connection),
        (status = 200, description = "Replayed: an earlier request with this Idempotency-Key stored the connection", body = Connection),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the connect scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such vault (or another partner's)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The integration does not exist or is not an api_key integration, the key breaks a rule, or the Idempotency-Key was used with a different request", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["connect"]))
)]
#[http_post("/vaults/{vault_id}/connections")]
pub async fn deposit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    idem: IdempotencyKey,
    JsonBody(body): JsonBody<CreateConnection>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Connect)?;

    let key = SecretString::from(body.api_key);

    let deposited = connections::deposit_api_key(
        &state.db,
        &state.keys.current(),
        &tenant,
        &path,
        &body.integration,
        &key,
        idem.0.as_deref(),
    )
    .await?;

    Ok(match deposited {
        Deposited::New(connection) => HttpResponse::Created().json(to_wire(connection)),
        Deposited::Replayed(connection) => HttpResponse::Ok().json(to_wire(connection)),
    })
}

/// List a vault's connections (metadata only).
#[utoipa::path(
    get, path = "/v1/vaults/{vault_id}/connections", tag = "connections", operation_id = "list_connections",
    params(("vault_id" = String, Path, description = "The vault's id"), ListConnections),
    responses(
        (status = 200, description = "A page of connections", body = ConnectionList),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the vaults scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 400, description = "A query parameter has the wrong type", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such vault", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["vaults"]))
)]
#[http_get("/vaults/{vault_id}/connections")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    Query(query): Query<ListConnections>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Vaults)?;

    let page = PageRequest::new(Kind::Connection, query.limit, query.cursor.as_deref())?;

    let page = connections::list(&state.db, &tenant, &path, &page).await?;

    Ok(HttpResponse::Ok().json(ConnectionList {
        data: page.data.into_iter().map(to_wire).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Get a connection (metadata only).
#[utoipa::path(
    get, path = "/v1/vaults/{vault_id}/connections/{connection_id}", tag = "connections", operation_id = "get_connection",
    params(("vault_id" = String, Path, description = "The vault's id"), ("connection_id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "The connection", body = Connection),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the vaults scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["vaults"]))
)]
#[http_get("/vaults/{vault_id}/connections/{connection_id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Vaults)?;

    let connection = connections::get(&state.db, &tenant, &path.0, &path.1).await?;

    Ok(HttpResponse::Ok().json(to_wire(connection)))
}

/// Revoke a connection: locally at once, and at the provider (RFC 7009, best effort).
#[utoipa::path(
    delete, path = "/v1/vaults/{vault_id}/connections/{connection_id}", tag = "connections", operation_id = "revoke_connection",
    params(("vault_id" = String, Path, description = "The vault's id"), ("connection_id" = String, Path, description = "The connection's id")),
    responses(
        (status = 200, description = "Revoked; `upstream_revocation` says what the provider answered", body = ConnectionDeleted),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the vaults scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["vaults"]))
)]
#[http_delete("/vaults/{vault_id}/connections/{connection_id}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Vaults)?;

    let revoked = connections::delete(&state.revoker(), &tenant, &path.0, &path.1).await?;

    Ok(HttpResponse::Ok().json(ConnectionDeleted {
        id: revoked.id,
        status: "revoked".into(),
        upstream_revocation: revoked.upstream_revocation.into(),
    }))
}

fn to_wire(connection: connections::Connection) -> Connection {
    Connection {
        scopes: connection
            .scopes
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        expires_at: connection.expires_at.map(super::time),
        created_at: super::time(connection.created_at),
        last_used_at: connection.last_used_at.map(super::time),
        id: connection.id,
        vault_id: connection.vault_id,
        integration: connection.integration,
        status: connection.status,
    }
}
