//! `/v1/vaults`: one sealed credential vault per end user.

use actix_web::{HttpResponse, delete as http_delete, get as http_get, post as http_post, web};
use connect_broker::auth::Scope;
use connect_broker::idempotency::Idempotency;
use connect_broker::ids::Kind;
use connect_broker::pagination::PageRequest;
use connect_broker::vaults::{self, Created};
use connect_sdk::types::{CreateVault, Problem, Vault, VaultDeleted, VaultList, VaultStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{IdempotencyKey, JsonBody, Query};
use crate::state::AppState;

/// Query of `GET /v1/vaults`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListVaults {
    /// Only the vault(s) of this end user.
    pub external_user_id: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Create a vault for an end user.
///
/// Generates the vault's key pair; the private half is stored wrapped by the master key. A
/// second active vault for the same `external_user_id` answers 409 with `existing_id`.
#[utoipa::path(
    post, path = "/v1/vaults", tag = "vaults", operation_id = "create_vault",
    request_body = CreateVault,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$", description = "Replays the first result for a repeated request")),
    responses(
        (status = 201, description = "Created", body = Vault),
        (status = 200, description = "Replayed: an earlier request with this Idempotency-Key created the vault", body = Vault),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the vaults scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 409, description = "A vault for this external_user_id exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["vaults"]))
)]
#[http_post("/vaults")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    idem: IdempotencyKey,
    JsonBody(body): JsonBody<CreateVault>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Vaults)?;

    let metadata = serde_json::Value::Object(body.metadata.clone().unwrap_or_default());
    let idem = match idem.0 {
        Some(key) => Some(Idempotency::new(
            &key,
            "vaults.create",
            &serde_json::to_value(&body).unwrap_or_default(),
        )?),
        None => None,
    };

    let created = vaults::create(
        &state.vault_writer,
        &state.keys.current(),
        &tenant,
        &body.external_user_id,
        &metadata,
        idem.as_ref(),
    )
    .await?;

    Ok(match created {
        Created::New(vault) => HttpResponse::Created().json(to_wire(vault)),
        Created::Replayed(vault) => HttpResponse::Ok().json(to_wire(vault)),
    })
}

/// List vaults, oldest first.
#[utoipa::path(
    get, path = "/v1/vaults", tag = "vaults", operation_id = "list_vaults",
    params(ListVaults),
    responses(
        (status = 200, description = "A page of vaults", body = VaultList),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the vaults scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 422, description = "Invalid limit, cursor or external_user_id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["vaults"]))
)]
#[http_get("/vaults")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    Query(query): Query<ListVaults>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Vaults)?;

    let page = PageRequest::new(Kind::Vault, query.limit, query.cursor.as_deref())?;

    let page = vaults::list(&state.db, &tenant, query.external_user_id.as_deref(), &page).await?;

    Ok(HttpResponse::Ok().json(VaultList {
        data: page.data.into_iter().map(to_wire).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Get a vault.
#[utoipa::path(
    get, path = "/v1/vaults/{vault_id}", tag = "vaults", operation_id = "get_vault",
    params(("vault_id" = String, Path, description = "The vault's id (`vlt_…`)")),
    responses(
        (status = 200, description = "The vault", body = Vault),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the vaults scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such vault (or another partner's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["vaults"]))
)]
#[http_get("/vaults/{vault_id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Vaults)?;

    let vault = vaults::get(&state.db, &tenant, &path).await?;

    Ok(HttpResponse::Ok().json(to_wire(vault)))
}

/// Delete a vault: revoke every connection and destroy the vault key.
///
/// Whatever was sealed to this vault can never be opened again. Deleting a deleted vault
/// answers the same way.
#[utoipa::path(
    delete, path = "/v1/vaults/{vault_id}", tag = "vaults", operation_id = "delete_vault",
    params(("vault_id" = String, Path, description = "The vault's id (`vlt_…`)")),
    responses(
        (status = 200, description = "Revoked", body = VaultDeleted),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the vaults scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such vault (or another partner's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["vaults"]))
)]
#[http_delete("/vaults/{vault_id}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Vaults)?;

    let deleted = vaults::delete(&state.revoker(), &tenant, &path).await?;

    Ok(HttpResponse::Ok().json(VaultDeleted {
        id: deleted.id,
        status: VaultStatus::Revoked,
        connections_revoked: deleted.connections_revoked,
    }))
}

fn to_wire(vault: vaults::Vault) -> Vault {
    Vault {
        metadata: serde_json::from_str(&vault.metadata).unwrap_or_default(),
        status: if vault.status == "active" {
            VaultStatus::Active
        } else {
            VaultStatus::Revoked
        },
        created_at: super::time(vault.created_at),
        revoked_at: vault.revoked_at.map(super::time),
        id: vault.id,
        external_user_id: vault.external_user_id,
    }
}
