//! `/v1/api-keys`: mint narrower keys and revoke them. Needs the `admin` scope.

use actix_web::{HttpResponse, delete as http_delete, get as http_get, post as http_post, web};
use connect_broker::api_keys::{self, Created};
use connect_broker::auth::Scope as BrokerScope;
use connect_broker::idempotency::Idempotency;
use connect_broker::ids::Kind;
use connect_broker::pagination::PageRequest;
use connect_broker::secret::ExposeSecret;
use connect_sdk::types::{
    ApiKey, ApiKeyList, CreateApiKey, CreatedApiKey, KeyStatus, Problem, Scope,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, JsonBody, Query};
use crate::state::AppState;

/// Query of `GET /v1/api-keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListKeys {
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Create an API key.
///
/// Needs an `admin` key. The new key is in the answer once and never again.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "api-keys", operation_id = "create_api_key",
    request_body = CreateApiKey,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$", description = "A repeat answers 409 naming the key: its secret is not shown twice")),
    responses(
        (status = 201, description = "Created; `api_key` is shown only now", body = CreatedApiKey),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 409, description = "Already created by an earlier request with this Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_post("/api-keys")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    idem: IdempotencyKey,
    JsonBody(body): JsonBody<CreateApiKey>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(BrokerScope::Admin)?;

    let scopes: Vec<BrokerScope> = body.scopes.iter().map(|s| to_broker(*s)).collect();
    let idem = match idem.0 {
        Some(key) => Some(Idempotency::new(
            &key,
            "api_keys.create",
            &serde_json::to_value(&body).unwrap_or_default(),
        )?),
        None => None,
    };

    let created = api_keys::create(&state.db, &tenant, &body.name, &scopes, idem.as_ref()).await?;

    match created {
        Created::New { key, secret } => Ok(HttpResponse::Created()
            .insert_header(("Cache-Control", "no-store"))
            .json(CreatedApiKey {
                key: to_wire(key),
                api_key: secret.expose_secret().to_owned(),
            })),
        Created::Replayed { key_id } => Err(ApiError::SecretNotReplayable { key_id }),
    }
}

/// List API keys, revoked ones included.
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "api-keys", operation_id = "list_api_keys",
    params(ListKeys),
    responses(
        (status = 200, description = "A page of keys (metadata only)", body = ApiKeyList),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_get("/api-keys")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    Query(query): Query<ListKeys>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(BrokerScope::Admin)?;

    let page = PageRequest::new(Kind::ApiKey, query.limit, query.cursor.as_deref())?;

    let page = api_keys::list(&state.db, &tenant, &page).await?;

    Ok(HttpResponse::Ok().json(ApiKeyList {
        data: page.data.into_iter().map(to_wire).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Revoke an API key. It fails on its next request.
#[utoipa::path(
    delete, path = "/v1/api-keys/{key_id}", tag = "api-keys", operation_id = "revoke_api_key",
    params(("key_id" = String, Path, description = "The key's id (`key_…`)")),
    responses(
        (status = 200, description = "Revoked", body = ApiKey),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such key (or another partner's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_delete("/api-keys/{key_id}")]
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(BrokerScope::Admin)?;

    let key = api_keys::revoke(&state.db, &tenant, &path).await?;

    Ok(HttpResponse::Ok().json(to_wire(key)))
}

fn to_broker(scope: Scope) -> BrokerScope {
    match scope {
        Scope::Admin => BrokerScope::Admin,
        Scope::Vaults => BrokerScope::Vaults,
        Scope::Connect => BrokerScope::Connect,
        Scope::Proxy => BrokerScope::Proxy,
        Scope::Audit => BrokerScope::Audit,
    }
}

fn from_broker(scope: BrokerScope) -> Scope {
    match scope {
        BrokerScope::Admin => Scope::Admin,
        BrokerScope::Vaults => Scope::Vaults,
        BrokerScope::Connect => Scope::Connect,
        BrokerScope::Proxy => Scope::Proxy,
        BrokerScope::Audit => Scope::Audit,
    }
}

fn to_wire(key: api_keys::ApiKey) -> ApiKey {
    ApiKey {
        scopes: key.scope_list().into_iter().map(from_broker).collect(),
        status: if key.revoked_at.is_some() {
            KeyStatus::Revoked
        } else {
            KeyStatus::Active
        },
        created_at: super::time(key.created_at),
        revoked_at: key.revoked_at.map(super::time),
        id: key.id,
        name: key.name,
        prefix: key.key_prefix,
    }
}
