//! The AgentSecrets Connect engine, free of HTTP-framework types.
//!
//! - [`keys`]: the master key, vault keys and sealing.
//! - [`store`]: the database (SQLite or PostgreSQL) and its migrations.
//! - [`audit`]: the hash-chained audit log.
//! - [`partners`], [`api_keys`], [`vaults`], [`credentials`]: the resources, one module each.
//! - [`auth`]: turning an API key into a [`auth::Tenant`] capability.
//! - [`integrations`], [`oauth`], [`connections`]: providers, the consent flow, refresh and
//!   revocation.
//! - [`proxy`] and [`net`]: the injection proxy and the one hardened outbound client;
//!   [`redirects`]: the hops an integration may opt in to following.
//! - [`fleet`] and [`cache`]: replicas sharing one store, and what each may keep in memory.
//! - [`webhooks`]: signed notifications of lifecycle changes, through a transactional outbox.

pub mod api_keys;
pub mod audit;
pub mod audit_batch;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod connections;
pub mod credentials;
pub mod error;
pub mod fleet;
pub mod idempotency;
pub mod ids;
pub mod integrations;
pub mod keys;
pub mod net;
pub mod oauth;
pub mod pagination;
pub mod partners;
pub mod proxy;
pub mod redaction;
pub mod redirects;
pub mod rotation;
pub mod secret;
pub mod settings;
pub mod store;
pub mod validate;
pub mod vault_batch;
pub mod vaults;
pub mod webhooks;

pub use error::{Error, Result};
pub use sqlx;
