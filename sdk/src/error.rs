//! The client's one error type: problem details from the API become [`Error::Api`], and what
//! happens on the way there (connection, timeout, a body that does not decode) keeps its own
//! variant.

use crate::types::Problem;

/// What a call to the API can fail with.
///
/// No variant carries a credential: problem details never quote one, transport errors are
/// stripped of their URL (which could hold a proxied query string), and decode errors keep the
/// serde message only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with problem details (or, from something in front of it, a non-JSON
    /// error status, reported with the code `unexpected_response`).
    #[error("{status} {code}: {detail}")]
    Api {
        status: u16,
        /// The stable, machine-readable code, e.g. `not_found`, `connection_revoked`.
        code: String,
        title: String,
        detail: String,
        /// Whether repeating the same request later could succeed.
        retryable: bool,
        /// The field a validation error is about.
        field: Option<String>,
        /// The object that already exists, for conflicts.
        existing_id: Option<String>,
        /// `Connect-Request-Id` of the answer, for support requests.
        request_id: Option<String>,
    },
    /// The request did not complete: connection refused or reset, timeout, TLS.
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// A success answer whose body is not what the API documents.
    #[error("could not decode a {status} answer: {source}")]
    Decode {
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be built (an invalid base URL, header name or header value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// [`crate::mock::MockClient`] was called with no scripted answer for the call.
    #[error("no scripted answer for {method} {path}")]
    Unscripted { method: String, path: String },
}

impl Error {
    /// Whether repeating the same request later could succeed: what the API said in
    /// `retryable`, or for errors without problem details, 429/502/503/504, timeouts and
    /// connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api {
                status, retryable, ..
            } => *retryable || matches!(status, 429 | 503),
            Error::Transport(e) => e.is_connect() || e.is_timeout(),
            Error::Decode { .. } | Error::InvalidRequest(_) | Error::Unscripted { .. } => false,
        }
    }

    /// The problem's `code`, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, for API and decode errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// An API error from problem details.
    pub fn from_problem(problem: Problem, request_id: Option<String>) -> Error {
        Error::Api {
            status: problem.status,
            code: problem.code,
            title: problem.title,
            detail: problem.detail,
            retryable: problem.retryable,
            field: problem.field,
            existing_id: problem.existing_id,
            request_id,
        }
    }

    /// An error status whose body is not problem details (a load balancer's page, say). The
    /// body is not kept: it is not ours and could echo anything.
    pub(crate) fn unexpected(status: u16, request_id: Option<String>) -> Error {
        Error::Api {
            status,
            code: "unexpected_response".into(),
            title: "Unexpected response".into(),
            detail: format!("the server answered {status} without problem details"),
            retryable: matches!(status, 429 | 502 | 503 | 504),
            field: None,
            existing_id: None,
            request_id,
        }
    }

    pub(crate) fn transport(e: reqwest::Error) -> Error {
        Error::Transport(e.without_url())
    }
}

/// What the client's calls return.
pub type Result<T, E = Error> = std::result::Result<T, E>;
