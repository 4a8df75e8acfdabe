//! [`MockClient`]: a [`ConnectApi`] for partners' tests, with scripted answers and a record of
//! the calls made.
//!
//! Scripts match a method and a path pattern (`*` stands for one segment, a final `**` for the
//! rest). Each answers once, in the order scripted, unless given [`Script::times`] or
//! [`Script::always`]. A call without a script fails with [`Error::Unscripted`].
//!
//! The record never holds a credential: write-only fields (`api_key`, `client_secret`) are
//! replaced by `"[REDACTED]"`, and proxied requests are recorded by method and path only (no
//! query, headers or body).
//!
//! ```
//! use connect_sdk::mock::MockClient;
//! use connect_sdk::types::{CreateConnection, CreateVault, Vault, VaultStatus};
//! use connect_sdk::{ConnectApi, Error};
//!
//! // Partner code under test, written against the trait.
//! async fn onboard(api: &impl ConnectApi, user: &str, key: &str) -> Result<String, Error> {
//!     let vault = api
//!         .vaults()
//!         .create(&CreateVault { external_user_id: user.into(), metadata: None })
//!         .await?;
//!     let deposit = CreateConnection { integration: "openai".into(), api_key: key.into() };
//!     api.connections().deposit(&vault.id, &deposit).await?;
//!     Ok(vault.id)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mock = MockClient::new();
//! mock.on("POST", "/v1/vaults").respond(&Vault {
//!     id: "vlt_1".into(),
//!     external_user_id: "u-1".into(),
//!     metadata: Default::default(),
//!     status: VaultStatus::Active,
//!     created_at: "2026-12-03T18:00:00Z".into(),
//!     revoked_at: None,
//! });
//! mock.on("POST", "/v1/vaults/*/connections")
//!     .fail(422, "invalid_api_key", "the key is too short");
//!
//! let error = onboard(&mock, "u-1", "sk-secret-value").await.unwrap_err();
//!
//! assert_eq!(error.code(), Some("invalid_api_key"));
//! let calls = mock.calls();
//! assert_eq!(calls[1].method, "POST");
//! assert_eq!(calls[1].path, "/v1/vaults/vlt_1/connections");
//! assert_eq!(calls[1].body.as_ref().unwrap()["api_key"], "[REDACTED]");
//! assert!(!format!("{calls:?}").contains("sk-secret-value"));
//! # });
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use crate::api::{ApiAnswer, ApiRequest, ConnectApi};
use crate::error::{Error, Result};
use crate::proxy::{ProxyRequest, ProxyResponse};
use crate::types::Problem;

/// Fields whose values are never recorded.
const WRITE_ONLY: [&str; 2] = ["api_key", "client_secret"];

/// A scriptable, recording stand-in for [`crate::Client`]. Clones share scripts and record.
#[derive(Debug, Clone, Default)]
pub struct MockClient {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    scripts: Vec<Scripted>,
    calls: Vec<RecordedCall>,
}

#[derive(Debug)]
struct Scripted {
    method: String,
    pattern: String,
    /// `None`: answers every matching call.
    remaining: Option<usize>,
    answer: Answer,
}

#[derive(Debug, Clone)]
enum Answer {
    Json { status: u16, body: Option<Value> },
    Problem(Problem),
    Proxy { status: u16, body: Bytes },
}

/// One call the mock received: ids (in the path and query), never values.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    pub method: String,
    /// The API path, ids included, e.g. `/v1/vaults/vlt_1/connections`.
    pub path: String,
    /// The query of JSON endpoints (filters, cursors). Empty for proxied requests.
    pub query: Vec<(String, String)>,
    /// The JSON body with write-only fields replaced by `"[REDACTED]"`. `None` for proxied
    /// requests, whose bodies are not recorded.
    pub body: Option<Value>,
}

impl MockClient {
    pub fn new() -> MockClient {
        MockClient::default()
    }

    /// Scripts an answer for calls with this method and path pattern.
    pub fn on(&self, method: &str, path_pattern: &str) -> Script<'_> {
        Script {
            mock: self,
            method: method.to_ascii_uppercase(),
            pattern: path_pattern.to_owned(),
            remaining: Some(1),
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    /// Forgets the calls recorded so far (scripts stay).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere in a test must not hide this mock's record.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self, call: RecordedCall) -> Result<Answer> {
        let mut state = self.lock();
        let (method, path) = (call.method.clone(), call.path.clone());
        state.calls.push(call);
        let script = state
            .scripts
            .iter_mut()
            .find(|s| s.method == method && s.remaining != Some(0) && matches(&s.pattern, &path));
        let Some(script) = script else {
            return Err(Error::Unscripted { method, path });
        };
        if let Some(left) = script.remaining.as_mut() {
            *left -= 1;
        }
        match script.answer.clone() {
            Answer::Problem(problem) => Err(Error::from_problem(problem, None)),
            answer => Ok(answer),
        }
    }
}

/// An answer being scripted; finish with `respond…` or `fail…`.
pub struct Script<'a> {
    mock: &'a MockClient,
    method: String,
    pattern: String,
    remaining: Option<usize>,
}

impl Script<'_> {
    /// Answer the next `n` matching calls (default 1).
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Answer every matching call.
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }

    /// Answer 200 with this body (a wire type, or any JSON).
    pub fn respond<T: Serialize + ?Sized>(self, body: &T) {
        self.respond_with_status(200, body)
    }

    pub fn respond_with_status<T: Serialize + ?Sized>(self, status: u16, body: &T) {
        let body = serde_json::to_value(body).expect("a scripted body serialises");
        self.push(Answer::Json {
            status,
            body: Some(body),
        });
    }

    /// Answer 204 with no body.
    pub fn respond_empty(self) {
        self.push(Answer::Json {
            status: 204,
            body: None,
        });
    }

    /// Answer a proxied request with this upstream status and body.
    pub fn respond_proxy(self, status: u16, body: impl Into<Bytes>) {
        self.push(Answer::Proxy {
            status,
            body: body.into(),
        });
    }

    /// Fail with problem details of this status and code (not retryable).
    pub fn fail(self, status: u16, code: &str, detail: &str) {
        self.fail_with(Problem {
            problem_type: format!("urn:agentsecrets-connect:problem:{code}"),
            title: code.replace('_', " "),
            status,
            detail: detail.to_owned(),
            code: code.to_owned(),
            field: None,
            existing_id: None,
            retryable: false,
        });
    }

    /// Fail with these problem details.
    pub fn fail_with(self, problem: Problem) {
        self.push(Answer::Problem(problem));
    }

    fn push(self, answer: Answer) {
        self.mock.lock().scripts.push(Scripted {
            method: self.method,
            pattern: self.pattern,
            remaining: self.remaining,
            answer,
        });
    }
}

impl ConnectApi for MockClient {
    async fn call(&self, request: ApiRequest) -> Result<ApiAnswer> {
        let call = RecordedCall {
            method: request.method.to_string(),
            path: request.path,
            query: request.query,
            body: request.body.map(redact),
        };
        match self.answer(call)? {
            Answer::Json { status, body } => Ok(ApiAnswer { status, body }),
            Answer::Proxy { .. } | Answer::Problem(_) => Err(Error::InvalidRequest(
                "a proxy answer was scripted for a JSON endpoint".into(),
            )),
        }
    }

    async fn proxy_call(&self, request: ProxyRequest) -> Result<ProxyResponse> {
        let call = RecordedCall {
            method: request.method.to_string(),
            path: request.api_path(),
            query: Vec::new(),
            body: None,
        };
        match self.answer(call)? {
            Answer::Proxy { status, body } => Ok(ProxyResponse {
                status,
                headers: HeaderMap::new(),
                body,
            }),
            Answer::Json { status, body } => Ok(ProxyResponse {
                status,
                headers: HeaderMap::new(),
                body: body.map(|b| b.to_string().into()).unwrap_or_default(),
            }),
            Answer::Problem(_) => unreachable!("problems are returned as errors"),
        }
    }
}

/// Replaces write-only values, at any depth.
fn redact(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (name, field) in map.iter_mut() {
                    if WRITE_ONLY.contains(&name.as_str()) && !field.is_null() {
                        *field = Value::String("[REDACTED]".into());
                    } else {
                        walk(field);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// Whether `path` fits `pattern`: `*` is one segment, a final `**` the rest.
fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.trim_matches('/').split('/');
    let mut got = path.trim_matches('/').split('/');
    loop {
        match (want.next(), got.next()) {
            (Some("**"), _) => return true,
            (Some(w), Some(g)) if w == "*" || w == g => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
