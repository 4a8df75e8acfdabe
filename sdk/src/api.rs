//! [`ConnectApi`]: every `/v1` endpoint as typed calls, implemented by the real
//! [`crate::Client`] and by [`crate::mock::MockClient`], so code written against the trait runs
//! against either.
//!
//! An implementation provides two transports, [`ConnectApi::call`] for the JSON endpoints and
//! [`ConnectApi::proxy_call`] for the proxy; the typed calls are built on them and grouped by
//! resource: `api.vaults().create(..)`, `api.connections().list(vault_id, ..)`, …

mod webhooks;

use std::future::Future;

use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use reqwest::Method;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::proxy::{Proxy, ProxyRequest, ProxyResponse};
use crate::query::{AuditParams, NewApiKey, PageParams, Paged, VaultParams};
pub use webhooks::Webhooks;

use crate::types::{
    ApiKey, ApiKeyList, AuditList, AuditVerification, ConnectSession, Connection,
    ConnectionDeleted, ConnectionList, CreateApiKey, CreateConnectSession, CreateConnection,
    CreateIntegration, CreateVault, CreatedApiKey, Integration, IntegrationList, ProviderList,
    Settings, UpdateIntegration, Vault, VaultDeleted, VaultList,
};

/// One call to a JSON endpoint.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The path from the API root, e.g. `/v1/vaults/vlt_…`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The JSON body. It can hold write-only values (`api_key`, `client_secret`): the mock
    /// records it only after replacing them.
    pub body: Option<Value>,
    /// Set on POSTs that create something: the client sends an `Idempotency-Key` (the same one
    /// on every retry), so a retried create never creates twice.
    pub creates: bool,
}

impl ApiRequest {
    fn new(method: Method, path: String) -> ApiRequest {
        ApiRequest {
            method,
            path,
            query: Vec::new(),
            body: None,
            creates: false,
        }
    }

    fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<ApiRequest> {
        let value = serde_json::to_value(body)
            .map_err(|_| Error::InvalidRequest("the body does not serialise".into()))?;
        self.body = Some(value);
        Ok(self)
    }

    fn creating(mut self) -> ApiRequest {
        self.creates = true;
        self
    }
}

/// A success answer of a JSON endpoint: the status and the body (`None` for 204).
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: Option<Value>,
}

impl ApiAnswer {
    fn decode<T: DeserializeOwned>(self) -> Result<T> {
        let status = self.status;
        serde_json::from_value(self.body.unwrap_or(Value::Null))
            .map_err(|source| Error::Decode { status, source })
    }
}

/// The AgentSecrets Connect API. Write partner code against `impl ConnectApi` and test it with
/// [`crate::mock::MockClient`].
pub trait ConnectApi: Send + Sync {
    /// Sends one call to a JSON endpoint. Error answers come back as [`Error::Api`].
    fn call(&self, request: ApiRequest) -> impl Future<Output = Result<ApiAnswer>> + Send;

    /// Sends one request through the proxy.
    fn proxy_call(
        &self,
        request: ProxyRequest,
    ) -> impl Future<Output = Result<ProxyResponse>> + Send;

    /// `/v1/api-keys`.
    fn api_keys(&self) -> ApiKeys<'_, Self> {
        ApiKeys(self)
    }

    /// `/v1/vaults`.
    fn vaults(&self) -> Vaults<'_, Self> {
        Vaults(self)
    }

    /// `/v1/vaults/{vault_id}/connect-sessions`.
    fn connect_sessions(&self) -> ConnectSessions<'_, Self> {
        ConnectSessions(self)
    }

    /// `/v1/vaults/{vault_id}/connections`.
    fn connections(&self) -> Connections<'_, Self> {
        Connections(self)
    }

    /// `/v1/integrations` and `/v1/providers`.
    fn integrations(&self) -> Integrations<'_, Self> {
        Integrations(self)
    }

    /// `/v1/settings`.
    fn settings(&self) -> PartnerSettings<'_, Self> {
        PartnerSettings(self)
    }

    /// `/v1/audit` and `/v1/audit/verify`.
    fn audit(&self) -> Audit<'_, Self> {
        Audit(self)
    }

    /// `/v1/webhooks`: endpoints that hear about lifecycle changes.
    fn webhooks(&self) -> Webhooks<'_, Self> {
        Webhooks(self)
    }

    /// `/v1/proxy/{connection_id}/…`: use the connection's credential without seeing it.
    fn proxy(&self, connection_id: &str) -> Proxy<'_, Self> {
        Proxy {
            api: self,
            connection_id: connection_id.to_owned(),
        }
    }
}

/// An id or key as one path segment. Ids never hold these characters; refusing them keeps a
/// caller's value from reaching another path.
pub(crate) fn segment(id: &str) -> Result<&str> {
    let bad = |c: char| matches!(c, '/' | '?' | '#' | '%' | '\\') || c.is_whitespace();
    if id.is_empty() || id == "." || id == ".." || id.contains(bad) || id.contains(char::is_control)
    {
        return Err(Error::InvalidRequest(
            "an id must be one non-empty path segment".into(),
        ));
    }
    Ok(id)
}

async fn fetch<A: ConnectApi + ?Sized, T: DeserializeOwned>(
    api: &A,
    request: Result<ApiRequest>,
) -> Result<T> {
    api.call(request?).await?.decode()
}

/// A list call: [`List::send`] for one page, [`List::into_stream`] for every item.
pub struct List<'a, A: ?Sized, L> {
    api: &'a A,
    request: Result<ApiRequest>,
    _page: std::marker::PhantomData<fn() -> L>,
}

impl<'a, A: ConnectApi + ?Sized, L: Paged> List<'a, A, L> {
    fn new(api: &'a A, request: Result<ApiRequest>) -> Self {
        List {
            api,
            request,
            _page: std::marker::PhantomData,
        }
    }

    /// The first page (from the `cursor` given, if any).
    pub async fn send(self) -> Result<L> {
        fetch(self.api, self.request).await
    }

    /// Every item from the starting position on, fetching each next page by `next_cursor`
    /// only when the previous one is used up. An error ends the stream after it is yielded.
    pub fn into_stream(self) -> impl Stream<Item = Result<L::Item>> + Send + 'a
    where
        A: 'a,
    {
        let api = self.api;
        let pages = stream::try_unfold(Some(self.request), move |next| async move {
            let Some(request) = next else {
                return Ok(None);
            };
            let request = request?;
            let page: L = api.call(request.clone()).await?.decode()?;
            let (items, cursor) = page.into_parts();
            let next = cursor.map(|cursor| {
                let mut request = request;
                request.query.retain(|(name, _)| name != "cursor");
                request.query.push(("cursor".into(), cursor));
                Ok(request)
            });
            Ok(Some((items, next)))
        });
        pages
            .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }
}

/// `/v1/api-keys`.
pub struct ApiKeys<'a, A: ?Sized>(&'a A);

impl<'a, A: ConnectApi + ?Sized> ApiKeys<'a, A> {
    /// Mints a key. Its value is in the answer this once, as a secret.
    ///
    /// A retry after a lost answer replays the `Idempotency-Key`; the server then answers 409
    /// naming the key rather than showing the secret twice.
    pub async fn create(&self, body: &CreateApiKey) -> Result<NewApiKey> {
        let request = ApiRequest::new(Method::POST, "/v1/api-keys".into()).json(body);
        let created: CreatedApiKey = fetch(self.0, request.map(ApiRequest::creating)).await?;
        Ok(NewApiKey {
            key: created.key,
            api_key: SecretString::from(created.api_key),
        })
    }

    pub fn list(&self, params: PageParams) -> List<'a, A, ApiKeyList> {
        let mut request = ApiRequest::new(Method::GET, "/v1/api-keys".into());
        params.push(&mut request.query);
        List::new(self.0, Ok(request))
    }

    pub async fn revoke(&self, key_id: &str) -> Result<ApiKey> {
        let path = format!("/v1/api-keys/{}", segment(key_id)?);
        fetch(self.0, Ok(ApiRequest::new(Method::DELETE, path))).await
    }
}

/// `/v1/vaults`.
pub struct Vaults<'a, A: ?Sized>(&'a A);

impl<'a, A: ConnectApi + ?Sized> Vaults<'a, A> {
    pub async fn create(&self, body: &CreateVault) -> Result<Vault> {
        let request = ApiRequest::new(Method::POST, "/v1/vaults".into()).json(body);
        fetch(self.0, request.map(ApiRequest::creating)).await
    }

    pub fn list(&self, params: VaultParams) -> List<'a, A, VaultList> {
        let mut request = ApiRequest::new(Method::GET, "/v1/vaults".into());
        request.query = params.to_query();
        List::new(self.0, Ok(request))
    }

    pub async fn get(&self, vault_id: &str) -> Result<Vault> {
        let path = format!("/v1/vaults/{}", segment(vault_id)?);
        fetch(self.0, Ok(ApiRequest::new(Method::GET, path))).await
    }

    /// Revokes every connection of the vault and destroys its key.
    pub async fn delete(&self, vault_id: &str) -> Result<VaultDeleted> {
        let path = format!("/v1/vaults/{}", segment(vault_id)?);
        fetch(self.0, Ok(ApiRequest::new(Method::DELETE, path))).await
    }
}

/// `/v1/vaults/{vault_id}/connect-sessions`.
pub struct ConnectSessions<'a, A: ?Sized>(&'a A);

impl<A: ConnectApi + ?Sized> ConnectSessions<'_, A> {
    /// A single-use URL to give the end user.
    pub async fn create(
        &self,
        vault_id: &str,
        body: &CreateConnectSession,
    ) -> Result<ConnectSession> {
        let path = format!("/v1/vaults/{}/connect-sessions", segment(vault_id)?);
        let request = ApiRequest::new(Method::POST, path).json(body);
        fetch(self.0, request.map(ApiRequest::creating)).await
    }
}

/// `/v1/vaults/{vault_id}/connections`.
pub struct Connections<'a, A: ?Sized>(&'a A);

impl<'a, A: ConnectApi + ?Sized> Connections<'a, A> {
    /// Deposits an API key for an `api_key` integration. The key is sealed and never returned.
    pub async fn deposit(&self, vault_id: &str, body: &CreateConnection) -> Result<Connection> {
        let path = format!("/v1/vaults/{}/connections", segment(vault_id)?);
        let request = ApiRequest::new(Method::POST, path).json(body);
        fetch(self.0, request.map(ApiRequest::creating)).await
    }

    pub fn list(&self, vault_id: &str, params: PageParams) -> List<'a, A, ConnectionList> {
        let request = segment(vault_id).map(|vault_id| {
            let path = format!("/v1/vaults/{vault_id}/connections");
            let mut request = ApiRequest::new(Method::GET, path);
            params.push(&mut request.query);
            request
        });
        List::new(self.0, request)
    }

    pub async fn get(&self, vault_id: &str, connection_id: &str) -> Result<Connection> {
        let path = connection_path(vault_id, connection_id)?;
        fetch(self.0, Ok(ApiRequest::new(Method::GET, path))).await
    }

    /// Revokes the connection upstream (where the provider supports it) and locally.
    pub async fn delete(&self, vault_id: &str, connection_id: &str) -> Result<ConnectionDeleted> {
        let path = connection_path(vault_id, connection_id)?;
        fetch(self.0, Ok(ApiRequest::new(Method::DELETE, path))).await
    }
}

fn connection_path(vault_id: &str, connection_id: &str) -> Result<String> {
    Ok(format!(
        "/v1/vaults/{}/connections/{}",
        segment(vault_id)?,
        segment(connection_id)?
    ))
}

/// `/v1/integrations` and `/v1/providers`.
pub struct Integrations<'a, A: ?Sized>(&'a A);

impl<A: ConnectApi + ?Sized> Integrations<'_, A> {
    /// Creates an integration; `client_secret` is sealed and never returned.
    pub async fn create(&self, body: &CreateIntegration) -> Result<Integration> {
        let request = ApiRequest::new(Method::POST, "/v1/integrations".into()).json(body);
        fetch(self.0, request.map(ApiRequest::creating)).await
    }

    /// Every integration of the partner (one page).
    pub async fn list(&self) -> Result<IntegrationList> {
        let request = ApiRequest::new(Method::GET, "/v1/integrations".into());
        fetch(self.0, Ok(request)).await
    }

    pub async fn get(&self, key: &str) -> Result<Integration> {
        let path = format!("/v1/integrations/{}", segment(key)?);
        fetch(self.0, Ok(ApiRequest::new(Method::GET, path))).await
    }

    pub async fn update(&self, key: &str, body: &UpdateIntegration) -> Result<Integration> {
        let path = format!("/v1/integrations/{}", segment(key)?);
        fetch(self.0, ApiRequest::new(Method::PATCH, path).json(body)).await
    }

    /// Deletes an integration that no active connection uses.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = format!("/v1/integrations/{}", segment(key)?);
        self.0.call(ApiRequest::new(Method::DELETE, path)).await?;
        Ok(())
    }

    /// The built-in provider templates.
    pub async fn providers(&self) -> Result<ProviderList> {
        let request = ApiRequest::new(Method::GET, "/v1/providers".into());
        fetch(self.0, Ok(request)).await
    }
}

/// `/v1/settings`.
pub struct PartnerSettings<'a, A: ?Sized>(&'a A);

impl<A: ConnectApi + ?Sized> PartnerSettings<'_, A> {
    pub async fn get(&self) -> Result<Settings> {
        let request = ApiRequest::new(Method::GET, "/v1/settings".into());
        fetch(self.0, Ok(request)).await
    }

    /// Replaces the settings; answers them as stored.
    pub async fn put(&self, body: &Settings) -> Result<Settings> {
        let request = ApiRequest::new(Method::PUT, "/v1/settings".into()).json(body);
        fetch(self.0, request).await
    }
}

/// `/v1/audit`.
pub struct Audit<'a, A: ?Sized>(&'a A);

impl<'a, A: ConnectApi + ?Sized> Audit<'a, A> {
    /// The partner's audit events, oldest first.
    pub fn list(&self, params: AuditParams) -> List<'a, A, AuditList> {
        let mut request = ApiRequest::new(Method::GET, "/v1/audit".into());
        request.query = params.to_query();
        List::new(self.0, Ok(request))
    }

    /// Checks the partner's hash chain.
    pub async fn verify(&self) -> Result<AuditVerification> {
        let request = ApiRequest::new(Method::GET, "/v1/audit/verify".into());
        fetch(self.0, Ok(request)).await
    }
}
