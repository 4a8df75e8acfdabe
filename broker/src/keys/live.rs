//! The master key ring a running server holds, and how it follows a rotation without a
//! restart.
//!
//! Requests take the ring as it is at that moment ([`LiveRing::current`]); a reload replaces
//! it whole. The follower ([`follow`]) looks at the registry whenever the store revision moves
//! (a rotation and a retirement both bump it) and at a fixed interval otherwise. When the
//! registry lists an unretired version the ring lacks, the source is read again; when the ring
//! holds a retired version, that version is dropped from memory. After each look the replica
//! reports its current version in `replicas.master_key_version`, which `master-key rotate`
//! waits for before rewrapping anything and `master-key retire` checks before retiring.
//!
//! An `env:VAR` source cannot change under a running process: a replica configured that way
//! sees a new version only after it is restarted with the new value (the README's operator
//! steps say so). Until then it keeps serving with what it holds and logs one WARN.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::source::{self, KeySource};
use super::{KeyError, MasterKeyRing};
use crate::fleet::Fleet;
use crate::store::Db;
use crate::store::master_keys::{self, ReconcileError};

/// The ring in use, replaceable while the server runs.
pub struct LiveRing {
    ring: RwLock<Arc<MasterKeyRing>>,
    source: KeySource,
    data_dir: PathBuf,
}

impl std::fmt::Debug for LiveRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRing")
            .field("ring", &self.current())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl LiveRing {
    /// `source` is the resolved source the ring was loaded from.
    pub fn new(ring: MasterKeyRing, source: KeySource, data_dir: PathBuf) -> Self {
        LiveRing {
            ring: RwLock::new(Arc::new(ring)),
            source,
            data_dir,
        }
    }

    /// The ring as it is now.
    pub fn current(&self) -> Arc<MasterKeyRing> {
        self.ring.read().expect("master key ring").clone()
    }

    /// Brings the ring in line with the registry. Returns whether it changed.
    pub async fn follow(&self, db: &Db) -> Result<bool, ReconcileError> {
        let registered = master_keys::list(db).await?;
        let retired: Vec<i64> = registered
            .iter()
            .filter(|r| r.retired_at.is_some())
            .map(|r| r.version)
            .collect();
        let ring = self.current();
        let missing = registered
            .iter()
            .any(|r| r.retired_at.is_none() && !ring.holds(r.version));
        let stale = ring.versions().any(|v| retired.contains(&v));
        if !missing && !stale {
            return Ok(false);
        }
        let fresh = if missing {
            let (source, data_dir) = (self.source.clone(), self.data_dir.clone());
            let outcome =
                tokio::task::spawn_blocking(move || source::load(&source, &data_dir, false))
                    .await
                    .map_err(|_| KeyError::SourceUnavailable {
                        source_name: self.source.to_string(),
                        reason: "the loader stopped".into(),
                    })??;
            master_keys::reconcile(db, &outcome.ring, &self.source.to_string()).await?;
            outcome.ring
        } else {
            MasterKeyRing::parse(&self.source.to_string(), &ring.to_material())?
        };
        let fresh = fresh
            .without(&retired)
            .ok_or_else(|| KeyError::SourceUnavailable {
                source_name: self.source.to_string(),
                reason: "it holds only retired master key versions".into(),
            })?;
        *self.ring.write().expect("master key ring") = Arc::new(fresh);
        Ok(true)
    }
}

/// Follows the registry for as long as the runtime runs: on every store revision this replica
/// reads, and every `every` in any case.
pub fn follow(live: Arc<LiveRing>, db: Db, fleet: Arc<Fleet>, every: Duration) {
    tokio::spawn(async move {
        let mut revisions = fleet.revisions();
        let mut warned: Option<String> = None;
        let mut reported: Option<i64> = None;
        loop {
            match live.follow(&db).await {
                Ok(true) => {
                    let ring = live.current();
                    tracing::info!(
                        versions = ?ring.versions().collect::<Vec<_>>(),
                        current = format!("mk{}", ring.current_version()),
                        "master key ring reloaded"
                    );
                    warned = None;
                }
                Ok(false) => warned = None,
                Err(err) => {
                    let text = format!("{err:#}");
                    if warned.as_deref() != Some(text.as_str()) {
                        tracing::warn!(
                            error = %text,
                            "the database lists a master key version this replica cannot load; \
                             serving with the versions it holds"
                        );
                        warned = Some(text);
                    }
                }
            }
            // Written when it changed, and again on every interval (a heartbeat may have
            // re-inserted the row without it).
            let current = live.current().current_version();
            if reported != Some(current) {
                match master_keys::report(&db, fleet.id(), current).await {
                    Ok(()) => reported = Some(current),
                    Err(err) => {
                        tracing::warn!(error = %err, "reporting the master key version failed")
                    }
                }
            }
            tokio::select! {
                changed = revisions.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(every).await;
                    }
                }
                _ = tokio::time::sleep(every) => reported = None,
            }
        }
    });
}
