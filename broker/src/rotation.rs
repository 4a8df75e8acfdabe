//! Master-key rotation: moving everything sealed to older master key versions onto the newest,
//! and retiring a version once nothing uses it.
//!
//! Four kinds of rows are sealed to the master key: vault keys (`vaults.wrapped_key`),
//! integration client secrets, webhook signing secrets (`webhooks.secret_sealed`) and the PKCE
//! verifiers of connect sessions still in flight.
//! Credentials are sealed to vault keys, not to the master key, so a rotation never reads or
//! writes them: a rewrapped vault key is the same vault identity under a new wrapping.
//!
//! Each batch is one transaction, and each row is updated only if it still holds the blob and
//! version that were read, so a crash at any point leaves every row either on its old version
//! or on the new one, and running the rotation again continues where it stopped. A rotation is
//! "in progress" while more than one version is unretired; its target is the newest.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock;
use crate::error::{Error, Result};
use crate::fleet::{self, FleetSettings};
use crate::keys::{Binding, MasterKeyRing};
use crate::store::{Db, master_keys};
use crate::webhooks;

/// Rows rewrapped per transaction unless the operator asks otherwise.
pub const DEFAULT_BATCH: i64 = 500;

/// What is sealed to one master key version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VersionUsage {
    pub version: i64,
    pub vault_keys: i64,
    pub client_secrets: i64,
    pub webhook_secrets: i64,
    pub pkce_verifiers: i64,
}

impl VersionUsage {
    pub fn total(&self) -> i64 {
        self.vault_keys + self.client_secrets + self.webhook_secrets + self.pkce_verifiers
    }
}

/// The kinds of rows sealed to the master key, in the order a rotation rewraps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    VaultKeys,
    ClientSecrets,
    WebhookSecrets,
    PkceVerifiers,
}

impl Sealed {
    pub const ALL: [Sealed; 4] = [
        Sealed::VaultKeys,
        Sealed::ClientSecrets,
        Sealed::WebhookSecrets,
        Sealed::PkceVerifiers,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Sealed::VaultKeys => "vault keys",
            Sealed::ClientSecrets => "integration client secrets",
            Sealed::WebhookSecrets => "webhook signing secrets",
            Sealed::PkceVerifiers => "connect-session PKCE verifiers",
        }
    }
}

/// Where the registry and the rows stand.
#[derive(Debug, Clone, Serialize)]
pub struct RotationState {
    /// The newest unretired version: what new vault keys are wrapped with.
    pub current: i64,
    /// `none` (one unretired version), `in_progress` (rows on older versions remain) or
    /// `complete` (older versions are unused and may be retired).
    pub state: &'static str,
    /// Rows still sealed to an older unretired version.
    pub remaining: i64,
    /// Unretired versions older than `current`.
    pub older: Vec<i64>,
    pub usage: Vec<VersionUsage>,
}

/// Counts, per master key version, what is sealed to it.
pub async fn usage(db: &Db) -> Result<Vec<VersionUsage>> {
    let mut by_version: BTreeMap<i64, VersionUsage> = BTreeMap::new();
    for kind in Sealed::ALL {
        let sql = match kind {
            Sealed::VaultKeys => {
                "SELECT master_key_version, COUNT(*) FROM vaults WHERE wrapped_key IS NOT NULL
                 GROUP BY master_key_version"
            }
            Sealed::ClientSecrets => {
                "SELECT master_key_version, COUNT(*) FROM integrations
                 WHERE client_secret_sealed IS NOT NULL GROUP BY master_key_version"
            }
            Sealed::WebhookSecrets => {
                "SELECT master_key_version, COUNT(*) FROM webhooks
                 WHERE secret_sealed IS NOT NULL GROUP BY master_key_version"
            }
            Sealed::PkceVerifiers => {
                "SELECT master_key_version, COUNT(*) FROM connect_sessions
                 WHERE verifier_sealed IS NOT NULL GROUP BY master_key_version"
            }
        };
        let rows: Vec<(Option<i64>, i64)> = sqlx::query_as(sql).fetch_all(db.pool()).await?;
        for (version, count) in rows {
            let version = version.unwrap_or(0);
            let entry = by_version.entry(version).or_insert_with(|| VersionUsage {
                version,
                ..VersionUsage::default()
            });
            match kind {
                Sealed::VaultKeys => entry.vault_keys = count,
                Sealed::ClientSecrets => entry.client_secrets = count,
                Sealed::WebhookSecrets => entry.webhook_secrets = count,
                Sealed::PkceVerifiers => entry.pkce_verifiers = count,
            }
        }
    }
    Ok(by_version.into_values().collect())
}

/// The rotation state read from the registry and the rows.
pub async fn state(db: &Db) -> Result<RotationState> {
    let live: Vec<i64> = master_keys::list(db)
        .await?
        .into_iter()
        .filter(|r| r.retired_at.is_none())
        .map(|r| r.version)
        .collect();
    let current = live.iter().copied().max().unwrap_or(0);
    let older: Vec<i64> = live.into_iter().filter(|v| *v < current).collect();
    let usage = usage(db).await?;
    let remaining = usage
        .iter()
        .filter(|u| u.version < current)
        .map(VersionUsage::total)
        .sum();
    let state = match (older.is_empty(), remaining) {
        (true, 0) => "none",
        (_, 0) => "complete",
        _ => "in_progress",
    };
    Ok(RotationState {
        current,
        state,
        remaining,
        older,
        usage,
    })
}

/// Tells every replica to look at the registry now: one bump of the store revision.
pub async fn announce(db: &Db) -> Result<i64> {
    let mut tx = db.pool().begin().await?;
    let revision = fleet::bump(&mut tx, &[]).await?;
    tx.commit().await?;
    Ok(revision)
}

/// Live replicas whose ring does not reach `version` yet (or that have not reported it).
pub async fn replicas_below(db: &Db, version: i64, settings: FleetSettings) -> Result<Vec<String>> {
    let alive_since = clock::now_ms() - (settings.lease + settings.clock_skew).as_millis() as i64;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM replicas WHERE heartbeat_at > $1
             AND (master_key_version IS NULL OR master_key_version < $2) ORDER BY id",
    )
    .bind(alive_since)
    .bind(version)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Rewraps up to `batch` rows of `kind` from versions below `target` to `target`, in one
/// transaction. A batch that found nothing means none is left.
pub async fn rewrap_batch(
    db: &Db,
    ring: &MasterKeyRing,
    kind: Sealed,
    target: i64,
    batch: i64,
) -> Result<Batch> {
    let select = match kind {
        Sealed::VaultKeys => {
            "SELECT id, partner_id, master_key_version, wrapped_key FROM vaults
             WHERE wrapped_key IS NOT NULL AND master_key_version < $1 ORDER BY id LIMIT $2"
        }
        Sealed::ClientSecrets => {
            "SELECT partner_id, integration_key, master_key_version, client_secret_sealed
             FROM integrations WHERE client_secret_sealed IS NOT NULL AND master_key_version < $1
             ORDER BY partner_id, integration_key LIMIT $2"
        }
        Sealed::WebhookSecrets => {
            "SELECT id, partner_id, master_key_version, secret_sealed FROM webhooks
             WHERE secret_sealed IS NOT NULL AND master_key_version < $1 ORDER BY id LIMIT $2"
        }
        Sealed::PkceVerifiers => {
            "SELECT id, partner_id, master_key_version, verifier_sealed FROM connect_sessions
             WHERE verifier_sealed IS NOT NULL AND master_key_version < $1 ORDER BY id LIMIT $2"
        }
    };
    let rows: Vec<(String, String, i64, Vec<u8>)> = sqlx::query_as(select)
        .bind(target)
        .bind(batch)
        .fetch_all(db.pool())
        .await?;
    if rows.is_empty() {
        return Ok(Batch {
            found: 0,
            changed: 0,
        });
    }
    // Sealing happens before the transaction, so the write locks are held only for updates.
    let mut rewrapped = Vec::with_capacity(rows.len());
    for (first, second, from, blob) in rows {
        let sealed = match kind {
            Sealed::VaultKeys => ring.rewrap_vault_key(&first, from, &blob, target),
            Sealed::ClientSecrets => ring.reseal_to_master(
                |v| Binding::partner_secret("client_secret", &first, &second, v),
                from,
                &blob,
                target,
            ),
            Sealed::WebhookSecrets => ring.reseal_to_master(
                |v| webhooks::secret_binding(&second, &first, v),
                from,
                &blob,
                target,
            ),
            Sealed::PkceVerifiers => ring.reseal_to_master(
                |v| Binding::partner_secret("pkce_verifier", &second, &first, v),
                from,
                &blob,
                target,
            ),
        }
        .map_err(|err| {
            Error::Internal(anyhow::Error::new(err).context(format!(
                "the {} of {first} {second} could not be rewrapped from mk{from}",
                kind.label()
            )))
        })?;
        rewrapped.push((first, second, from, blob, sealed));
    }
    let mut changed = 0;
    let mut tx = db.pool().begin().await?;
    for (first, second, from, blob, sealed) in &rewrapped {
        let update = match kind {
            Sealed::VaultKeys => sqlx::query(
                "UPDATE vaults SET wrapped_key = $1, master_key_version = $2
                 WHERE id = $3 AND master_key_version = $4 AND wrapped_key = $5",
            )
            .bind(sealed)
            .bind(target)
            .bind(first),
            Sealed::ClientSecrets => sqlx::query(
                "UPDATE integrations SET client_secret_sealed = $1, master_key_version = $2
                 WHERE partner_id = $3 AND integration_key = $4 AND master_key_version = $5
                     AND client_secret_sealed = $6",
            )
            .bind(sealed)
            .bind(target)
            .bind(first)
            .bind(second),
            Sealed::WebhookSecrets => sqlx::query(
                "UPDATE webhooks SET secret_sealed = $1, master_key_version = $2
                 WHERE id = $3 AND partner_id = $4 AND master_key_version = $5
                     AND secret_sealed = $6",
            )
            .bind(sealed)
            .bind(target)
            .bind(first)
            .bind(second),
            Sealed::PkceVerifiers => sqlx::query(
                "UPDATE connect_sessions SET verifier_sealed = $1, master_key_version = $2
                 WHERE id = $3 AND partner_id = $4 AND master_key_version = $5
                     AND verifier_sealed = $6",
            )
            .bind(sealed)
            .bind(target)
            .bind(first)
            .bind(second),
        };
        changed += update
            .bind(from)
            .bind(blob)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    // A row changed under us (revoked, or its secret replaced) is not counted; the next read
    // sees it as it now is.
    Ok(Batch {
        found: rewrapped.len() as u64,
        changed,
    })
}

/// One batch: the rows read and the rows rewrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub found: u64,
    pub changed: u64,
}

/// Why a version may not be retired.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("mk{0} is not a registered master key version")]
    NotRegistered(i64),
    #[error("mk{0} is the current master key version; rotate to a new one first")]
    Current(i64),
    #[error(
        "mk{} still seals {} vault keys, {} integration client secrets, {} webhook signing \
         secrets and {} PKCE verifiers; run `agentsecrets-connect master-key rotate` until it \
         reports the rotation complete",
        .0.version, .0.vault_keys, .0.client_secrets, .0.webhook_secrets, .0.pkce_verifiers
    )]
    InUse(VersionUsage),
    #[error(
        "replicas {0:?} have not reported a newer master key version, so they may still wrap new \
         vault keys with this one; give their master-key source the new version first"
    )]
    ReplicasBehind(Vec<String>),
    #[error(transparent)]
    Engine(#[from] Error),
}

impl From<sqlx::Error> for RetireError {
    fn from(err: sqlx::Error) -> Self {
        RetireError::Engine(err.into())
    }
}

/// Marks `version` retired in the registry when nothing uses it, and tells the replicas.
/// Returns false if it was retired already. Removing it from the source is the caller's step.
pub async fn retire(db: &Db, version: i64, settings: FleetSettings) -> Result<bool, RetireError> {
    let registered = master_keys::list(db).await?;
    let entry = registered
        .iter()
        .find(|r| r.version == version)
        .ok_or(RetireError::NotRegistered(version))?;
    if entry.retired_at.is_some() {
        return Ok(false);
    }
    let newest = registered
        .iter()
        .filter(|r| r.retired_at.is_none())
        .map(|r| r.version)
        .max()
        .unwrap_or(version);
    if version == newest {
        return Err(RetireError::Current(version));
    }
    let behind = replicas_below(db, version + 1, settings).await?;
    if !behind.is_empty() {
        return Err(RetireError::ReplicasBehind(behind));
    }
    // Every live replica wraps with a newer version, so no new row can take this one while
    // the counts below are checked and the version is marked.
    let in_use = usage(db)
        .await?
        .into_iter()
        .find(|u| u.version == version && u.total() > 0);
    if let Some(in_use) = in_use {
        return Err(RetireError::InUse(in_use));
    }
    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE master_keys SET retired_at = $1 WHERE version = $2 AND retired_at IS NULL")
        .bind(clock::now_ms())
        .bind(version)
        .execute(&mut *tx)
        .await?;
    fleet::bump(&mut tx, &[]).await?;
    tx.commit().await?;
    Ok(true)
}
