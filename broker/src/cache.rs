//! What a replica keeps in memory between requests, so a proxied call need not read the store
//! four times and decrypt twice: authenticated API keys, connections with their integration,
//! and opened API-key credentials.
//!
//! Every entry carries the store revision it was read at (see [`crate::fleet`]) and serves a
//! request only when the revision that request read is not newer; anything that could end a
//! use bumps the revision, so a revoked key, connection or vault is never served from here.
//! Entries are bounded in number and expire after a few minutes; opened credentials are
//! zeroized when dropped. Failed lookups are not kept, so unknown keys cannot fill the cache.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache as Map;

use crate::auth::{self, AuthError, Principal};
use crate::credentials;
use crate::error::Error;
use crate::integrations::{self, Integration};
use crate::keys::MasterKeyRing;
use crate::secret::{ExposeSecret, SecretString};
use crate::store::Db;

const MAX_KEYS: u64 = 10_000;
const MAX_CONNECTIONS: u64 = 100_000;
/// How long an opened credential may stay in memory unused or not.
const CREDENTIAL_TTL: Duration = Duration::from_secs(300);
const ENTRY_TTL: Duration = Duration::from_secs(600);

/// A value and the store revision it was read at.
struct Stamped<T> {
    revision: i64,
    value: T,
}

/// A connection as the proxy needs it.
#[derive(Clone)]
pub struct LiveConnection {
    pub partner_id: String,
    pub vault_id: String,
    pub integration: Arc<Integration>,
    /// `active`, `reauth_required` or `revoked` (the vault's state folded in).
    pub status: String,
}

pub struct Cache {
    principals: Map<String, Arc<Stamped<Principal>>>,
    connections: Map<String, Arc<Stamped<LiveConnection>>>,
    /// By connection id: the sealed version it was opened from and the value.
    credentials: Map<String, Arc<(i64, SecretString)>>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            principals: Map::builder()
                .max_capacity(MAX_KEYS)
                .time_to_live(ENTRY_TTL)
                .build(),
            connections: Map::builder()
                .max_capacity(MAX_CONNECTIONS)
                .time_to_live(ENTRY_TTL)
                .build(),
            credentials: Map::builder()
                .max_capacity(MAX_CONNECTIONS)
                .time_to_live(CREDENTIAL_TTL)
                .build(),
        }
    }
}

impl Cache {
    /// [`auth::authenticate`], from memory when nothing changed since it was last checked.
    pub async fn authenticate(
        &self,
        db: &Db,
        revision: i64,
        key: &SecretString,
    ) -> Result<Principal, AuthError> {
        let hash = auth::hash_key(key);
        if let Some(hit) = self.principals.get(&hash)
            && hit.revision >= revision
        {
            return Ok(hit.value.clone());
        }
        let principal = auth::authenticate(db, key).await?;
        self.principals.insert(
            hash,
            Arc::new(Stamped {
                revision,
                value: principal.clone(),
            }),
        );
        Ok(principal)
    }

    /// The connection and its integration, read at `revision` or later.
    pub async fn connection(
        &self,
        db: &Db,
        revision: i64,
        connection_id: &str,
    ) -> Result<Option<LiveConnection>, Error> {
        if let Some(hit) = self.connections.get(connection_id)
            && hit.revision >= revision
        {
            return Ok(Some(hit.value.clone()));
        }
        let row: Option<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT c.partner_id, c.vault_id, c.integration, c.status, v.status
             FROM connections c JOIN vaults v ON v.id = c.vault_id WHERE c.id = $1",
        )
        .bind(connection_id)
        .fetch_optional(db.pool())
        .await?;
        let Some((partner_id, vault_id, integration_key, status, vault_status)) = row else {
            return Ok(None);
        };
        let Some(integration) = integrations::find(db, &partner_id, &integration_key).await? else {
            return Ok(None);
        };
        let status = if vault_status == "active" {
            status
        } else {
            "revoked".to_owned()
        };
        if status != "active" {
            self.forget_connection(connection_id);
        }
        let live = LiveConnection {
            partner_id,
            vault_id,
            integration: Arc::new(integration),
            status,
        };
        self.connections.insert(
            connection_id.to_owned(),
            Arc::new(Stamped {
                revision,
                value: live.clone(),
            }),
        );
        Ok(Some(live))
    }

    /// The opened API key of an active connection. Only call it for a connection that
    /// [`Cache::connection`] just found active: that check is what makes the entry usable.
    pub async fn api_key(
        &self,
        db: &Db,
        keys: &MasterKeyRing,
        partner_id: &str,
        connection_id: &str,
    ) -> Result<(SecretString, i64), Error> {
        if let Some(hit) = self.credentials.get(connection_id) {
            return Ok((hit.1.clone(), hit.0));
        }
        let opened = credentials::open_for_partner(db, keys, partner_id, connection_id).await?;
        let text = String::from_utf8(opened.secret.expose_secret().to_vec())
            .map_err(|_| Error::Internal(anyhow::anyhow!("a stored API key is not UTF-8")))?;
        let value = SecretString::from(text);
        self.credentials.insert(
            connection_id.to_owned(),
            Arc::new((opened.seal_version, value.clone())),
        );
        Ok((value, opened.seal_version))
    }

    /// Drops everything held for a connection (its credential above all).
    pub fn forget_connection(&self, connection_id: &str) {
        self.credentials.invalidate(connection_id);
        self.connections.invalidate(connection_id);
    }
}
