//! `/v1/settings`: the partner's allowed return URLs.

use actix_web::{HttpResponse, get as http_get, put as http_put, web};
use connect_broker::auth::Scope;
use connect_broker::settings;
use connect_sdk::types::{Problem, Settings};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::state::AppState;

/// Read the partner settings.
#[utoipa::path(
    get, path = "/v1/settings", tag = "settings", operation_id = "get_settings",
    responses(
        (status = 200, description = "The settings", body = Settings),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_get("/settings")]
pub async fn get(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let urls = settings::return_urls(&state.db, tenant.partner_id()).await?;

    Ok(HttpResponse::Ok().json(Settings {
        allowed_return_urls: urls,
    }))
}

/// Replace the partner settings.
#[utoipa::path(
    put, path = "/v1/settings", tag = "settings", operation_id = "put_settings",
    request_body = Settings,
    responses(
        (status = 200, description = "The settings as stored", body = Settings),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 422, description = "A URL breaks a rule", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_put("/settings")]
pub async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Settings>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let urls = settings::set_return_urls(&state.db, &tenant, &body.allowed_return_urls).await?;

    Ok(HttpResponse::Ok().json(Settings {
        allowed_return_urls: urls,
    }))
}
