//! The API's one error type and its one mapping to RFC 9457 problem details.
//!
//! The client is told little: a status, a stable `code`, a sentence, and whether a retry could
//! help. The log is told the whole cause chain, for server-side failures only.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use connect_broker::auth::AuthError;
use connect_sdk::types::Problem;

/// `type` URIs are `urn:agentsecrets-connect:problem:<code>`.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:agentsecrets-connect:problem:";
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const REALM: &str = "agentsecrets-connect";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Broker(#[from] connect_broker::Error),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A body that is not valid JSON for the endpoint. `detail` never quotes a value.
    #[error("invalid JSON body: {detail}")]
    InvalidJson {
        detail: String,
        field: Option<String>,
    },
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("invalid header {header}: {reason}")]
    InvalidHeader {
        header: &'static str,
        reason: &'static str,
    },
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("no such route")]
    RouteNotFound,
    /// A documented path asked with a method it does not have; `allow` lists the ones it has.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("the API key's secret is shown only when it is created")]
    SecretNotReplayable { key_id: String },
    #[error("the webhook's signing secret is shown only when it is created")]
    WebhookSecretNotReplayable { webhook_id: String },
}

/// Everything a problem response needs, decided in one place.
struct Shape {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    field: Option<String>,
    existing_id: Option<String>,
    retryable: bool,
    www_authenticate: Option<String>,
    allow: Option<String>,
}

impl Shape {
    fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Shape {
            status,
            code,
            title,
            detail: detail.into(),
            field: None,
            existing_id: None,
            retryable: false,
            www_authenticate: None,
            allow: None,
        }
    }

    fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }
}

impl ApiError {
    fn shape(&self) -> Shape {
        use connect_broker::Error as E;
        match self {
            ApiError::Broker(E::NotFound(what)) => Shape::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "Not found",
                format!("{what} not found"),
            ),
            ApiError::Broker(E::Conflict { what, existing_id }) => Shape {
                existing_id: existing_id.clone(),
                ..Shape::new(
                    StatusCode::CONFLICT,
                    "already_exists",
                    "Already exists",
                    format!("a {what} already exists"),
                )
            },
            ApiError::Broker(E::Invalid { field, reason }) => Shape {
                field: Some(field.clone()),
                ..Shape::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "Validation failed",
                    format!("{field} {reason}"),
                )
            },
            ApiError::Broker(E::State(code)) => state_shape(code),
            ApiError::Broker(E::IdempotencyMismatch) => Shape::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
                "this Idempotency-Key was used with a different request",
            ),
            ApiError::Broker(E::IdempotencyInProgress) => Shape::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed",
            )
            .retryable(),
            ApiError::Broker(E::Store(err)) | ApiError::Auth(AuthError::Store(err)) => {
                storage_shape(err)
            }
            ApiError::Broker(E::Key(_) | E::Internal(_)) => internal(),
            ApiError::Auth(err) => auth_shape(err),
            ApiError::InvalidJson { detail, field } => Shape {
                field: field.clone(),
                ..Shape::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "Invalid JSON body",
                    detail.clone(),
                )
            },
            ApiError::InvalidQuery(detail) => Shape::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "Invalid query parameters",
                detail.clone(),
            ),
            ApiError::InvalidHeader { header, reason } => Shape {
                field: Some((*header).to_owned()),
                ..Shape::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_header",
                    "Invalid header",
                    format!("{header} {reason}"),
                )
            },
            ApiError::UnsupportedMediaType => Shape::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as application/json",
            ),
            ApiError::PayloadTooLarge(limit) => Shape::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                format!("the body must be at most {limit} bytes"),
            ),
            ApiError::RouteNotFound => Shape::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "Not found",
                "no such route",
            ),
            ApiError::MethodNotAllowed { allow } => Shape {
                allow: Some(allow.clone()),
                ..Shape::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "Method not allowed",
                    "this path does not support the method; see the Allow header",
                )
            },
            ApiError::SecretNotReplayable { key_id } => Shape {
                existing_id: Some(key_id.clone()),
                ..Shape::new(
                    StatusCode::CONFLICT,
                    "idempotent_replay_secret_unavailable",
                    "Key already created",
                    "an earlier request with this Idempotency-Key created the key; its secret was shown once \
                     and cannot be shown again. Revoke it and create another if it was lost",
                )
            },
            ApiError::WebhookSecretNotReplayable { webhook_id } => Shape {
                existing_id: Some(webhook_id.clone()),
                ..Shape::new(
                    StatusCode::CONFLICT,
                    "idempotent_replay_secret_unavailable",
                    "Webhook already created",
                    "an earlier request with this Idempotency-Key created the webhook; its signing secret \
                     was shown once and cannot be shown again. Delete it and create another if it was lost",
                )
            },
        }
    }
}

/// Refusals that name a state of the connection, the integration or the upstream. Upstream
/// failures are 502/504 and say whether a retry can help; the caller's own state is 409.
fn state_shape(code: &'static str) -> Shape {
    let (status, title, detail) = match code {
        "connection_revoked" => (
            StatusCode::CONFLICT,
            "Connection revoked",
            "the connection has been revoked",
        ),
        "reauth_required" => (
            StatusCode::CONFLICT,
            "Reconnect required",
            "the provider refused the refresh; the user must reconnect",
        ),
        "vault_revoked" => (
            StatusCode::CONFLICT,
            "Vault revoked",
            "the vault has been deleted",
        ),
        "integration_in_use" => (
            StatusCode::CONFLICT,
            "Integration in use",
            "connections still use this integration; revoke them first",
        ),
        "host_not_allowed" => (
            StatusCode::FORBIDDEN,
            "Host not allowed",
            "the target is not on the integration's allowed hosts or is not a permitted address",
        ),
        "integration_misconfigured" => (
            StatusCode::BAD_GATEWAY,
            "Integration misconfigured",
            "the provider rejected the integration's client credentials; fix the integration",
        ),
        "upstream_timeout" => (
            StatusCode::GATEWAY_TIMEOUT,
            "Upstream timeout",
            "the upstream did not answer in time",
        ),
        "upstream_unreachable" => (
            StatusCode::BAD_GATEWAY,
            "Upstream unreachable",
            "the upstream could not be reached",
        ),
        "upstream_unavailable" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Provider unavailable",
            "the provider's token endpoint is failing; the credential is kept and will be refreshed later",
        ),
        "refresh_in_progress" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Refresh in progress",
            "another replica is refreshing this credential",
        ),
        "upstream_encoding_refused" => (
            StatusCode::BAD_GATEWAY,
            "Compressed upstream response",
            "the upstream compressed its answer although asked not to; it cannot be checked for echoed credentials",
        ),
        "store_unavailable" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage unavailable",
            "this server cannot reach the database; try again",
        ),
        "too_many_redirects" => (
            StatusCode::BAD_GATEWAY,
            "Too many redirects",
            "the upstream redirected more than 5 times",
        ),
        "redirect_refused" => (
            StatusCode::BAD_GATEWAY,
            "Redirect refused",
            "the upstream redirected to another origin with the credential in the URL",
        ),
        "response_too_large" => (
            StatusCode::BAD_GATEWAY,
            "Response too large",
            "the upstream response exceeds the size cap",
        ),
        _ => (
            StatusCode::CONFLICT,
            "Not possible in the current state",
            "the object's state does not allow this",
        ),
    };
    let shape = Shape::new(status, code, title, detail);
    match code {
        "upstream_timeout"
        | "upstream_unreachable"
        | "upstream_unavailable"
        | "refresh_in_progress"
        | "store_unavailable" => shape.retryable(),
        _ => shape,
    }
}

fn internal() -> Shape {
    Shape::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal error",
        "an internal error occurred",
    )
}

fn storage_shape(err: &connect_broker::sqlx::Error) -> Shape {
    // SQLite busy or locked, PostgreSQL serialisation failure or deadlock: a retry can succeed.
    let contended = matches!(
        err,
        connect_broker::sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517" | "40001" | "40P01"))
    );
    if contended {
        return Shape::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_busy",
            "Storage busy",
            "the database is busy; try again",
        )
        .retryable();
    }
    match err {
        connect_broker::sqlx::Error::PoolTimedOut
        | connect_broker::sqlx::Error::PoolClosed
        | connect_broker::sqlx::Error::Io(_) => Shape::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "Storage unavailable",
            "the database is not reachable; try again",
        )
        .retryable(),
        _ => internal(),
    }
}

fn auth_shape(err: &AuthError) -> Shape {
    let bearer = |extra: &str| Some(format!("Bearer realm=\"{REALM}\"{extra}"));
    match err {
        AuthError::Missing => Shape {
            www_authenticate: bearer(""),
            ..Shape::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                "send an API key as Authorization: Bearer <key>",
            )
        },
        AuthError::Invalid => Shape {
            www_authenticate: bearer(", error=\"invalid_token\""),
            ..Shape::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Invalid API key",
                "the API key is unknown or revoked, or was not sent as Authorization: Bearer <key>",
            )
        },
        AuthError::Suspended => Shape {
            www_authenticate: bearer(
                ", error=\"invalid_token\", error_description=\"partner suspended\"",
            ),
            ..Shape::new(
                StatusCode::UNAUTHORIZED,
                "partner_suspended",
                "Partner suspended",
                "this partner account is suspended; its API keys do not authenticate",
            )
        },
        AuthError::InsufficientScope(scope) => Shape {
            www_authenticate: bearer(&format!(
                ", error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            ..Shape::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "Insufficient scope",
                format!("this API key lacks the {scope} scope"),
            )
        },
        AuthError::Store(err) => storage_shape(err),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.shape().status
    }

    fn error_response(&self) -> HttpResponse {
        let shape = self.shape();
        if shape.status.is_server_error() {
            let chain = error_chain(self);
            tracing::error!(code = shape.code, error = %chain, "request failed");
        }
        problem_response(shape)
    }
}

fn problem_response(shape: Shape) -> HttpResponse {
    let problem = Problem {
        problem_type: format!("{PROBLEM_TYPE_PREFIX}{}", shape.code),
        title: shape.title.to_owned(),
        status: shape.status.as_u16(),
        detail: shape.detail,
        code: shape.code.to_owned(),
        field: shape.field,
        existing_id: shape.existing_id,
        retryable: shape.retryable,
    };
    let mut response = HttpResponse::build(shape.status);
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    ));
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(challenge) = shape
        .www_authenticate
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.insert_header((header::WWW_AUTHENTICATE, challenge));
    }
    if let Some(allow) = shape.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        response.insert_header((header::ALLOW, allow));
    }
    response.json(problem)
}

/// The error and its sources, `outer: inner: innermost`, for the log.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub type ApiResult<T> = Result<T, ApiError>;
