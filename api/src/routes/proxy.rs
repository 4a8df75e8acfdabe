//! `ANY /v1/proxy/{connection_id}/{path}`: use a credential without seeing it.

use actix_web::{HttpRequest, HttpResponse, web};
use connect_broker::auth::Scope;
use connect_broker::proxy::{self, Outbound};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest request body forwarded.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Forwards the request to the integration's API with the credential injected. Registered for
/// every method; documented in the OpenAPI document as GET and POST.
pub async fn forward(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Proxy)?;

    let (connection_id, tail) = path.into_inner();
    let body = body
        .to_bytes_limited(MAX_REQUEST_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(MAX_REQUEST_BYTES))?;
    let body = body.map_err(|_| ApiError::PayloadTooLarge(MAX_REQUEST_BYTES))?;
    let method =
        reqwest::Method::from_bytes(request.method().as_str().as_bytes()).map_err(|_| {
            ApiError::InvalidHeader {
                header: "method",
                reason: "is not supported",
            }
        })?;
    let outbound = Outbound {
        method,
        path: tail,
        query: Some(request.query_string().to_owned()),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    };

    let inbound = proxy::forward(&state.proxy(), &tenant, &connection_id, outbound).await?;

    let mut response = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(inbound.status)
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    );
    for (name, value) in inbound.headers {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_bytes(&value) {
            response.append_header((name, value));
        }
    }
    Ok(response.streaming(inbound.body))
}

/// Proxy a request (any method) to the connection's integration API.
#[utoipa::path(
    get, path = "/v1/proxy/{connection_id}/{path}", tag = "proxy",
    params(
        ("connection_id" = String, Path, description = "The connection whose credential is injected"),
        ("path" = String, Path, description = "The path below the integration's base URL"),
    ),
    responses(
        (status = 200, description = "The upstream's answer, passed through (any status)"),
        (status = 401, description = "Missing or invalid API key", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the proxy scope", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such connection", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
        (status = 409, description = "connection_revoked or reauth_required", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
        (status = 403, description = "host_not_allowed", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
        (status = 502, description = "upstream_unreachable, response_too_large or integration_misconfigured", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
        (status = 503, description = "upstream_unavailable (the token endpoint is failing) or refresh_in_progress; retryable", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
        (status = 504, description = "upstream_timeout", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["proxy"]))
)]
#[allow(dead_code)]
fn documented() {}
