//! `ANY /v1/proxy/{connection_id}/{path}`: use a credential without seeing it.

use actix_web::{HttpRequest, HttpResponse, web};
use connect_broker::auth::Scope;
use connect_broker::proxy::{self, Body, Outbound};

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
        body,
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
    Ok(match inbound.body {
        Body::Whole(bytes) => response.body(bytes),
        Body::Stream(stream) => response.streaming(stream),
    })
}

// The route takes every method; the document lists the common ones, each under its own operation
// id. Whatever the upstream answers (any status, any content type, any body) is passed through:
// the `default` response says so. The problem responses listed are the ones this server adds;
// an upstream may answer the same statuses with bodies of its own.
macro_rules! documented {
    ($($name:ident: $method:ident, $operation_id:tt, [$($body:tt)*];)*) => {$(
        /// Proxy a request to the connection's integration API.
        ///
        /// The method, the path below the integration's base URL, the query, the body and the
        /// caller's non-sensitive headers are forwarded with the credential injected. The
        /// upstream's status, filtered headers and body come back, echoed credentials redacted,
        /// plus `Connect-Request-Id`. A redirect comes back as it came, unless the integration
        /// sets `api.follow_redirects`: then up to 5 hops are followed, each vetted and on the
        /// allowlist, the credential only on the base URL's origin.
        #[utoipa::path(
            $method, path = "/v1/proxy/{connection_id}/{path}", tag = "proxy", operation_id = $operation_id, $($body)*
            params(
                ("connection_id" = String, Path, description = "The connection whose credential is injected", example = "con_01J9ZQ4M8V6W2B3C4D5E6F7G8H"),
                ("path" = String, Path, description = "The path below the integration's base URL", example = "user/repos"),
            ),
            responses(
                (status = 401, description = "Missing or invalid API key", body = connect_sdk::types::Problem, content_type = "application/problem+json",
                    headers(("WWW-Authenticate" = String, description = "The Bearer challenge"))),
                (status = 403, description = "insufficient_scope (the key lacks the proxy scope) or host_not_allowed (also for a redirect hop, when the integration follows redirects)", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
                (status = 404, description = "No such connection (or another partner's)", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
                (status = 409, description = "connection_revoked, reauth_required or vault_revoked", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
                (status = 413, description = "The request body exceeds 10 MiB", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
                (status = 502, description = "upstream_unreachable, response_too_large, upstream_encoding_refused, integration_misconfigured, too_many_redirects or redirect_refused (when the integration follows redirects)", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
                (status = 503, description = "upstream_unavailable (the token endpoint is failing) or refresh_in_progress; retryable", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
                (status = 504, description = "upstream_timeout", body = connect_sdk::types::Problem, content_type = "application/problem+json"),
                (status = "default", description = "The upstream's answer, passed through: any status, any content type, any body", body = serde_json::Value, content_type = "*/*"),
            ),
            security(("api_key" = ["proxy"]))
        )]
        #[allow(dead_code)]
        fn $name() {}
    )*};
}

documented! {
    documented_get: get, "proxy_get", [];
    documented_post: post, "proxy_post", [request_body(content = String, content_type = "application/octet-stream",
        description = "Forwarded as is, with the caller's own Content-Type (any type; at most 10 MiB)"),];
    documented_put: put, "proxy_put", [request_body(content = String, content_type = "application/octet-stream",
        description = "Forwarded as is, with the caller's own Content-Type (any type; at most 10 MiB)"),];
    documented_patch: patch, "proxy_patch", [request_body(content = String, content_type = "application/octet-stream",
        description = "Forwarded as is, with the caller's own Content-Type (any type; at most 10 MiB)"),];
    documented_delete: delete, "proxy_delete", [];
}
