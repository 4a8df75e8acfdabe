//! The proxy builder: `api.proxy(connection_id).get("/user").send().await` sends a request
//! through `/v1/proxy/{connection_id}/…`, where the server injects the credential.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{ConnectApi, segment};
use crate::error::{Error, Result};

/// One request to send through the proxy. Built by [`ProxyBuilder`].
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub connection_id: String,
    pub method: Method,
    /// The upstream path, relative to the integration's `api.base_url`, e.g. `/user`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ProxyRequest {
    /// The API path this request goes to (without the query).
    pub fn api_path(&self) -> String {
        format!(
            "/v1/proxy/{}/{}",
            self.connection_id,
            self.path.trim_start_matches('/')
        )
    }
}

/// The upstream's answer as the proxy passed it on: status, filtered headers and the body, with
/// any echoed credential already redacted by the server.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ProxyResponse {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|source| Error::Decode {
            status: self.status,
            source,
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Connect-Request-Id`, which also names the request in the audit log.
    pub fn request_id(&self) -> Option<&str> {
        self.headers
            .get("connect-request-id")
            .and_then(|v| v.to_str().ok())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Chooses the method and path of a proxied request.
pub struct Proxy<'a, A: ?Sized> {
    pub(crate) api: &'a A,
    pub(crate) connection_id: String,
}

impl<'a, A: ConnectApi + ?Sized> Proxy<'a, A> {
    pub fn request(&self, method: Method, path: &str) -> ProxyBuilder<'a, A> {
        ProxyBuilder {
            api: self.api,
            error: segment(&self.connection_id).err(),
            request: ProxyRequest {
                connection_id: self.connection_id.clone(),
                method,
                path: path.to_owned(),
                query: Vec::new(),
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
        }
    }

    pub fn get(&self, path: &str) -> ProxyBuilder<'a, A> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> ProxyBuilder<'a, A> {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> ProxyBuilder<'a, A> {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> ProxyBuilder<'a, A> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> ProxyBuilder<'a, A> {
        self.request(Method::DELETE, path)
    }
}

/// Headers, query and body of a proxied request, then [`ProxyBuilder::send`].
///
/// Mistakes (an invalid header name, a body that does not serialise) are kept and returned by
/// `send`, so the chain reads straight through.
pub struct ProxyBuilder<'a, A: ?Sized> {
    api: &'a A,
    request: ProxyRequest,
    error: Option<Error>,
}

impl<A: ConnectApi + ?Sized> ProxyBuilder<'_, A> {
    /// Adds a header. The server drops hop-by-hop and credential headers before forwarding.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.request.headers.append(name, value);
            }
            _ => self.fail(format!("header {name:?} is not a valid header")),
        }
        self
    }

    /// Adds query parameters.
    pub fn query<K: ToString, V: ToString>(mut self, pairs: &[(K, V)]) -> Self {
        self.request
            .query
            .extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.request.body = body.into();
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.request.body = bytes.into();
                self.request.headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Err(_) => self.fail("the JSON body does not serialise".into()),
        }
        self
    }

    /// Sends the request. Any upstream answer, 4xx and 5xx included, is `Ok`; a refusal by
    /// Connect itself (revoked connection, host not allowed, upstream unreachable, …) is
    /// [`Error::Api`] with its code.
    pub async fn send(self) -> Result<ProxyResponse> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.api.proxy_call(self.request).await
    }

    fn fail(&mut self, reason: String) {
        self.error.get_or_insert(Error::InvalidRequest(reason));
    }
}
