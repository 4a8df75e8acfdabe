//! Replicas sharing one store: the store revision that keeps their in-memory caches honest, and
//! the acknowledgements that make a change final on every replica before the call that made it
//! returns.
//!
//! Every change that must end the use of something a replica may hold in memory (a revoked
//! connection or vault, a connection that needs re-authorization, a revoked API key, a
//! suspended partner, a changed integration) calls [`bump`] as the last write of its
//! transaction. A cached entry remembers the revision it was read at and serves a request only
//! while this replica's known revision ([`Fleet::revision`]) is not newer, so the hot path
//! reads no revision from the store.
//!
//! Each replica polls the store revision every few milliseconds. For every new one it drops the
//! revoked connections' cached credentials, raises its known revision, waits until its own
//! requests that may still use those connections are done (the proxy's [`Gate`]), and writes
//! its acknowledgement into `replicas`, where a heartbeat also says it is alive. The call that
//! made the change returns only once every live replica has acknowledged ([`Fleet::settle`],
//! [`wait_for_replicas`]). A replica whose heartbeat or poll has not reached the store for the
//! lease period stops forwarding ([`Fleet::lease_held`]), since it may have missed a change;
//! the others stop waiting for it a lease period plus a clock-skew allowance after its last
//! heartbeat. The allowance is the assumption: replicas' clocks agree to within it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::clock;
use crate::error::Error;
use crate::ids::{self, Kind};
use crate::proxy::Gate;
use crate::store::Db;

/// Adds one to the store revision and records the connections this change revokes, inside the
/// caller's transaction. Call it as the transaction's last write: the revision row is then the
/// last lock taken, in every transaction alike.
pub async fn bump(
    conn: &mut sqlx::AnyConnection,
    revoked_connections: &[&str],
) -> Result<i64, Error> {
    let (revision,): (i64,) = sqlx::query_as(
        "UPDATE store_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
    )
    .fetch_one(&mut *conn)
    .await?;
    let now = clock::now_ms();
    for connection_id in revoked_connections {
        sqlx::query(
            "INSERT INTO revision_revocations (revision, connection_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(revision)
        .bind(*connection_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(revision)
}

async fn read_revision(db: &Db) -> Result<i64, sqlx::Error> {
    let (revision,): (i64,) = sqlx::query_as("SELECT revision FROM store_revision WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    Ok(revision)
}

/// How often a replica talks to the store, and how long its silence is tolerated.
#[derive(Debug, Clone, Copy)]
pub struct FleetSettings {
    /// Between two heartbeats.
    pub heartbeat: Duration,
    /// How long after its last heartbeat a replica stops forwarding, and the others stop
    /// waiting for it (plus `clock_skew`).
    pub lease: Duration,
    /// Between two looks at the revision for changes to take in.
    pub poll: Duration,
    /// The largest difference assumed between two replicas' clocks.
    pub clock_skew: Duration,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            heartbeat: Duration::from_secs(1),
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(20),
            clock_skew: Duration::from_secs(2),
        }
    }
}

/// This replica's membership in the fleet.
pub struct Fleet {
    id: String,
    db: Db,
    gate: Arc<Gate>,
    cache: Arc<Cache>,
    settings: FleetSettings,
    /// The store revision whose changes this replica has taken in: cached entries read at an
    /// older one are not served.
    known: AtomicI64,
    /// The highest revision acknowledged in the store (after draining what it revoked).
    acked: Mutex<i64>,
    /// When the last heartbeat and the last revision poll that reached the store were sent.
    last_heartbeat: Mutex<Instant>,
    last_poll: Mutex<Instant>,
    /// The latest store revision read, for whatever else follows the store (the master key).
    seen: tokio::sync::watch::Sender<i64>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Fleet {
    /// Registers this replica and starts its heartbeat and polling loops. Revisions up to the
    /// current one are acknowledged at once: this process holds nothing from before.
    pub async fn join(
        db: Db,
        gate: Arc<Gate>,
        cache: Arc<Cache>,
        settings: FleetSettings,
    ) -> Result<Arc<Fleet>, Error> {
        let id = ids::new(Kind::Replica);
        let now = clock::now_ms();
        let sent = Instant::now();
        let current = read_revision(&db).await?;
        sqlx::query(
            "INSERT INTO replicas (id, started_at, heartbeat_at, acked_revision) VALUES ($1, $2, $2, $3)",
        )
        .bind(&id)
        .bind(now)
        .bind(current)
        .execute(db.pool())
        .await?;
        let (stop, _) = tokio::sync::watch::channel(false);
        let fleet = Arc::new(Fleet {
            id,
            db,
            gate,
            cache,
            settings,
            known: AtomicI64::new(current),
            acked: Mutex::new(current),
            last_heartbeat: Mutex::new(sent),
            last_poll: Mutex::new(sent),
            seen: tokio::sync::watch::channel(current).0,
            stop,
        });
        tokio::spawn(heartbeats(fleet.clone()));
        tokio::spawn(polls(fleet.clone()));
        tracing::info!(replica_id = %fleet.id, revision = current, "joined the fleet");
        Ok(fleet)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store revision as this replica last read it; changes within a poll period of every
    /// bump.
    pub fn revisions(&self) -> tokio::sync::watch::Receiver<i64> {
        self.seen.subscribe()
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The revision cached entries must have been read at to be served. Fails while this
    /// replica may have missed a change (see [`Fleet::lease_held`]).
    pub fn revision(&self) -> Result<i64, Error> {
        if !self.lease_held() {
            return Err(Error::State("store_unavailable"));
        }
        Ok(self.known.load(Ordering::SeqCst))
    }

    /// Whether this replica may still forward: its last heartbeat and its last revision poll
    /// reached the store within the lease. Checked right before a credential is sent.
    pub fn lease_held(&self) -> bool {
        let heartbeat = *self.last_heartbeat.lock().expect("heartbeat");
        let poll = *self.last_poll.lock().expect("poll");
        heartbeat.elapsed() < self.settings.lease && poll.elapsed() < self.settings.lease
    }

    /// After a change at `revision` has committed on this replica: drops what it held for the
    /// revoked `connections`, waits for this replica's requests still using them, then until
    /// every other live replica has acknowledged the revision. Bounded by the longest a proxied
    /// request may take plus the lease; past that a WARN names the replicas that did not answer.
    pub async fn settle(&self, revision: i64, connections: &[&str]) {
        for connection_id in connections {
            self.cache.forget_connection(connection_id);
        }
        self.known.fetch_max(revision, Ordering::SeqCst);
        for connection_id in connections {
            self.gate.drain(connection_id).await;
        }
        let deadline = self.gate.upstream_timeout()
            + self.settings.lease
            + self.settings.clock_skew
            + Duration::from_secs(5);
        wait(&self.db, revision, Some(&self.id), self.settings, deadline).await;
    }

    /// Leaves the fleet at shutdown, so revocations stop waiting for this replica.
    pub async fn leave(&self) {
        let _ = self.stop.send(true);
        if let Err(err) = sqlx::query("DELETE FROM replicas WHERE id = $1")
            .bind(&self.id)
            .execute(self.db.pool())
            .await
        {
            tracing::warn!(error = %err, "leaving the fleet failed");
        }
    }

    async fn heartbeat(&self) -> Result<(), sqlx::Error> {
        let sent = Instant::now();
        let now = clock::now_ms();
        let acked = *self.acked.lock().expect("acked");
        // Re-inserts the row if another replica removed it as stale.
        let updated = sqlx::query("UPDATE replicas SET heartbeat_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&self.id)
            .execute(self.db.pool())
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO replicas (id, started_at, heartbeat_at, acked_revision) VALUES ($1, $2, $2, $3)",
            )
            .bind(&self.id)
            .bind(now)
            .bind(acked)
            .execute(self.db.pool())
            .await?;
        }
        *self.last_heartbeat.lock().expect("heartbeat") = sent;
        Ok(())
    }

    /// Takes in every revision up to the current one: drops what each revoked, raises the
    /// known revision, drains this replica's requests on the revoked connections, and
    /// acknowledges.
    async fn poll(&self) -> Result<(), sqlx::Error> {
        let sent = Instant::now();
        let current = read_revision(&self.db).await?;
        *self.last_poll.lock().expect("poll") = sent;
        let acked = *self.acked.lock().expect("acked");
        self.seen
            .send_if_modified(|seen| std::mem::replace(seen, current) != current);
        if current <= acked {
            return Ok(());
        }
        // Every bump up to `current` has committed: each held the revision row until then.
        let revoked: Vec<(String,)> = sqlx::query_as(
            "SELECT connection_id FROM revision_revocations WHERE revision > $1 AND revision <= $2",
        )
        .bind(acked)
        .bind(current)
        .fetch_all(self.db.pool())
        .await?;
        for (connection_id,) in &revoked {
            self.cache.forget_connection(connection_id);
        }
        self.known.fetch_max(current, Ordering::SeqCst);
        futures_util::future::join_all(
            revoked
                .iter()
                .map(|(connection_id,)| self.gate.drain(connection_id)),
        )
        .await;
        sqlx::query("UPDATE replicas SET acked_revision = $1 WHERE id = $2")
            .bind(current)
            .bind(&self.id)
            .execute(self.db.pool())
            .await?;
        *self.acked.lock().expect("acked") = current;
        Ok(())
    }

    /// Removes what replicas that stopped long ago left behind.
    async fn tidy(&self) -> Result<(), sqlx::Error> {
        let hour_ago = clock::now_ms() - 3_600_000;
        sqlx::query("DELETE FROM replicas WHERE heartbeat_at < $1")
            .bind(hour_ago)
            .execute(self.db.pool())
            .await?;
        sqlx::query("DELETE FROM revision_revocations WHERE created_at < $1")
            .bind(hour_ago)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

async fn heartbeats(fleet: Arc<Fleet>) {
    let mut stop = fleet.stop.subscribe();
    let mut beats: u64 = 0;
    loop {
        if let Err(err) = fleet.heartbeat().await {
            tracing::warn!(error = %err, "the heartbeat did not reach the store");
        }
        if beats.is_multiple_of(600)
            && let Err(err) = fleet.tidy().await
        {
            tracing::warn!(error = %err, "tidying the replica table failed");
        }
        beats += 1;
        tokio::select! {
            _ = tokio::time::sleep(fleet.settings.heartbeat) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn polls(fleet: Arc<Fleet>) {
    let mut stop = fleet.stop.subscribe();
    loop {
        if let Err(err) = fleet.poll().await {
            tracing::warn!(error = %err, "polling the store revision failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(fleet.settings.poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The longest [`wait_for_replicas`] waits: a replica may be draining a request for up to the
/// default upstream deadline before it acknowledges.
const MAX_WAIT: Duration = Duration::from_secs(80);

/// After a change at `revision` has committed outside any replica's own revocation path (an API
/// key revoked, a partner suspended from the CLI, an integration changed): waits until every
/// live replica has taken it in, so that the next request anywhere sees it.
pub async fn wait_for_replicas(db: &Db, revision: i64) {
    wait(db, revision, None, FleetSettings::default(), MAX_WAIT).await;
}

async fn wait(
    db: &Db,
    revision: i64,
    except: Option<&str>,
    settings: FleetSettings,
    max_wait: Duration,
) {
    let deadline = Instant::now() + max_wait;
    let mut pause = Duration::from_millis(2);
    loop {
        match waiting_for(db, revision, except, settings).await {
            Ok(waiting) if waiting.is_empty() => return,
            Ok(waiting) if Instant::now() >= deadline => {
                tracing::warn!(
                    revision,
                    replicas = ?waiting,
                    "replicas did not acknowledge a change in time"
                );
                return;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "checking acknowledgements failed");
                if Instant::now() >= deadline {
                    return;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Live replicas (other than `except`) that have not acknowledged `revision`.
async fn waiting_for(
    db: &Db,
    revision: i64,
    except: Option<&str>,
    settings: FleetSettings,
) -> Result<Vec<String>, sqlx::Error> {
    let alive_since = clock::now_ms() - (settings.lease + settings.clock_skew).as_millis() as i64;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM replicas WHERE id <> $1 AND acked_revision < $2 AND heartbeat_at > $3",
    )
    .bind(except.unwrap_or(""))
    .bind(revision)
    .bind(alive_since)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
