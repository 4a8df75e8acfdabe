//! The AgentSecrets Connect engine, free of HTTP-framework types.
//!
//! - [`keys`]: the master key, vault keys and sealing.
//! - [`store`]: the database (SQLite or PostgreSQL) and its migrations.
//! - [`audit`]: the hash-chained audit log.
//! - [`partners`], [`api_keys`], [`vaults`], [`credentials`]: the resources, one module each.
//! - [`auth`]: turning an API key into a [`auth::Tenant`] capability.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod credentials;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod pagination;
pub mod partners;
pub mod secret;
pub mod store;
pub mod validate;
pub mod vaults;

pub use error::{Error, Result};
pub use sqlx;
