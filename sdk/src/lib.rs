//! AgentSecrets Connect for partners: the wire types of the v1 API, a typed async client and a
//! mock client for tests.
//!
//! The wire types in [`types`] are the one definition of the JSON the API speaks: the server
//! serialises them and derives its OpenAPI document from them (feature `openapi`), and the
//! client deserialises them. None of them carries a credential value back to a caller; the only
//! secrets ever returned are a newly minted API key (once, which the client hands over as a
//! [`secrecy::SecretString`] in [`NewApiKey`]) and a new webhook's signing secret (once, in
//! [`types::CreatedWebhook`], which the client hands over as a [`secrecy::SecretString`] in
//! [`NewWebhook`]).
//!
//! [`webhooks`] verifies the signature of a webhook a receiver got.
//!
//! The client (default feature `client`) covers every `/v1` endpoint through the
//! [`ConnectApi`] trait, which [`Client`] and [`mock::MockClient`] both implement:
//!
//! - problem details become [`Error::Api`] with the stable `code`; [`Error::is_retryable`]
//!   says whether trying again could help;
//! - 429 and 503 answers, and connection failures of requests that are safe to repeat, are
//!   retried with backoff, honouring `Retry-After` ([`RetryPolicy`]); creating POSTs carry an
//!   `Idempotency-Key`, the same on every retry, so a retry never creates twice;
//! - resources are grouped: `api_keys()`, `vaults()`, `connect_sessions()`, `connections()`,
//!   `integrations()`, `settings()`, `audit()` and `webhooks()` (register an endpoint, list,
//!   get and delete endpoints, read an endpoint's deliveries);
//! - lists stream: `client.vaults().list(params).into_stream()` fetches page after page;
//! - `client.proxy(connection_id).get("/user").send()` calls the upstream API with the
//!   credential injected by the server.
//!
//! # Quick start
//!
//! ```no_run
//! use connect_sdk::types::{CreateConnectSession, CreateVault};
//! use connect_sdk::{Client, ConnectApi, VaultParams};
//! use futures_util::TryStreamExt;
//!
//! # async fn run() -> Result<(), connect_sdk::Error> {
//! let client = Client::builder("https://connect.example.com", "acs_your_api_key").build()?;
//!
//! // One vault per end user, then a link for the user to connect an account.
//! let vault = client
//!     .vaults()
//!     .create(&CreateVault { external_user_id: "u-123".into(), metadata: None })
//!     .await?;
//! let session = client
//!     .connect_sessions()
//!     .create(&vault.id, &CreateConnectSession { integration: "github".into(), return_url: None })
//!     .await?;
//! println!("send the user to {}", session.url);
//!
//! // Later: call GitHub as the user, without ever holding the token.
//! let connections: Vec<_> = client
//!     .connections()
//!     .list(&vault.id, Default::default())
//!     .into_stream()
//!     .try_collect()
//!     .await?;
//! if let Some(connection) = connections.first() {
//!     let user = client.proxy(&connection.id).get("/user").send().await?;
//!     println!("{} {}", user.status, user.text());
//! }
//!
//! // Every vault, page by page.
//! let mut vaults = client.vaults().list(VaultParams::default()).into_stream();
//! while let Some(vault) = vaults.try_next().await? {
//!     println!("{} {}", vault.id, vault.external_user_id);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Errors are typed:
//!
//! ```
//! use connect_sdk::Error;
//!
//! fn explain(error: &Error) -> &'static str {
//!     match error {
//!         Error::Api { code, .. } if code == "connection_revoked" => "ask the user to reconnect",
//!         Error::Api { status: 404, .. } => "no such object",
//!         e if e.is_retryable() => "try again later",
//!         _ => "give up",
//!     }
//! }
//! # let _ = explain;
//! ```

// `Error::Api` keeps the problem's fields inline so that callers can match on them
// (`Error::Api { code, .. }`); errors are the slow path, so its size is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod types;
pub mod webhooks;

#[cfg(feature = "client")]
mod api;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
pub mod mock;
#[cfg(feature = "client")]
mod proxy;
#[cfg(feature = "client")]
mod query;

#[cfg(feature = "client")]
pub use api::{
    ApiAnswer, ApiKeys, ApiRequest, Audit, ConnectApi, ConnectSessions, Connections, Integrations,
    List, PartnerSettings, Vaults, Webhooks,
};
#[cfg(feature = "client")]
pub use client::{Client, ClientBuilder, RetryPolicy};
#[cfg(feature = "client")]
pub use error::{Error, Result};
#[cfg(feature = "client")]
pub use proxy::{Proxy, ProxyBuilder, ProxyRequest, ProxyResponse};
#[cfg(feature = "client")]
pub use query::{AuditParams, NewApiKey, NewWebhook, PageParams, Paged, VaultParams};
#[cfg(feature = "client")]
pub use secrecy;
