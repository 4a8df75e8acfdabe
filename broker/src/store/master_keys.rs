//! The registry of master key versions: their public recipients, so that start-up can tell a
//! wrong or missing master key from the right one before touching any vault.

use crate::clock;
use crate::keys::{KeyError, MasterKeyRing};
use crate::store::Db;

/// A registered version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Registered {
    pub version: i64,
    pub recipient: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

pub async fn list(db: &Db) -> Result<Vec<Registered>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, recipient, created_at, retired_at FROM master_keys ORDER BY version",
    )
    .fetch_all(db.pool())
    .await
}

/// Whether any master key version has been registered (the database has been used).
pub async fn any_registered(db: &Db) -> Result<bool, sqlx::Error> {
    Ok(!list(db).await?.is_empty())
}

/// Checks the loaded ring against the registry: every registered, unretired version must be
/// present with the same public recipient. Versions the ring has and the registry lacks are
/// registered.
pub async fn reconcile(
    db: &Db,
    ring: &MasterKeyRing,
    source_name: &str,
) -> Result<(), ReconcileError> {
    for registered in list(db).await? {
        if registered.retired_at.is_some() {
            continue;
        }
        if ring.recipient(registered.version).as_deref() != Some(registered.recipient.as_str()) {
            return Err(ReconcileError::Key(KeyError::Mismatch {
                version: format!("mk{}", registered.version),
                recipient: registered.recipient,
                source_name: source_name.to_owned(),
            }));
        }
    }
    for version in ring.versions() {
        let recipient = ring.recipient(version).expect("listed version");
        sqlx::query(
            "INSERT INTO master_keys (version, recipient, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(recipient)
        .bind(clock::now_ms())
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// Vaults per master key version, for `master-key status`.
pub async fn vaults_per_version(db: &Db) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT master_key_version, COUNT(*) FROM vaults WHERE wrapped_key IS NOT NULL
         GROUP BY master_key_version ORDER BY master_key_version",
    )
    .fetch_all(db.pool())
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the master key registry could not be read or written")]
    Store(#[from] sqlx::Error),
}

/// Records the master key version replica `replica_id` wraps new vault keys with.
pub async fn report(db: &Db, replica_id: &str, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE replicas SET master_key_version = $1
         WHERE id = $2 AND (master_key_version IS NULL OR master_key_version <> $1)",
    )
    .bind(version)
    .bind(replica_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Replicas whose heartbeat reached the store within `lease`, with the master key version each
/// reported.
pub async fn live_replicas(
    db: &Db,
    lease: std::time::Duration,
) -> Result<Vec<(String, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, master_key_version FROM replicas WHERE heartbeat_at > $1 ORDER BY id",
    )
    .bind(clock::now_ms() - lease.as_millis() as i64)
    .fetch_all(db.pool())
    .await
}
