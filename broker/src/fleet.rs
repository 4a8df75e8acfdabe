//! Replicas sharing one store: the store revision that keeps their in-memory caches honest, and
//! the acknowledgements that make a revocation final on every replica before it returns.
//!
//! Every change that must end the use of something a replica may hold in memory (a revoked
//! connection or vault, a connection that needs re-authorization, a revoked API key, a
//! suspended partner, a changed integration) calls [`bump`] as the last write of its
//! transaction. A cached entry remembers the revision it was read at and serves a request only
//! if no bump has happened since; the requests in flight at one moment share one read of the
//! revision ([`Fleet::revision`]).
//!
//! A revocation also names the connections it revoked. Each replica writes a heartbeat into
//! `replicas` and watches the revision: for every new one it drops the revoked connections'
//! cached credentials, waits until its own requests that may still use them are done (the
//! proxy's [`Gate`]), and acknowledges the revision. The revoking call returns only once every
//! live replica has acknowledged ([`Fleet::settle`]). A replica whose heartbeat has not reached
//! the store for the lease period stops forwarding ([`Fleet::lease_held`]), since it may have
//! missed a revocation; the others stop waiting for it a lease period plus a clock-skew
//! allowance after its last heartbeat. The allowance is the assumption: replicas' clocks agree
//! to within it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

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
    /// Between two looks at the revision for revocations to acknowledge.
    pub poll: Duration,
    /// The largest difference assumed between two replicas' clocks.
    pub clock_skew: Duration,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            heartbeat: Duration::from_secs(1),
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(50),
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
    reads: Mutex<Reads>,
    /// When the last heartbeat that reached the store was sent.
    last_heartbeat: Mutex<Instant>,
    acked: Mutex<i64>,
    /// The latest store revision read, for whatever else follows the store (the master key).
    seen: tokio::sync::watch::Sender<i64>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Requests waiting for the next read of the revision.
#[derive(Default)]
struct Reads {
    reading: bool,
    waiting: Vec<oneshot::Sender<Result<i64, ()>>>,
}

impl Fleet {
    /// Registers this replica and starts its heartbeat and acknowledgement loops. Revisions
    /// up to the current one are acknowledged at once: this process holds nothing from before.
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
            reads: Mutex::default(),
            last_heartbeat: Mutex::new(sent),
            acked: Mutex::new(current),
            seen: tokio::sync::watch::channel(current).0,
            stop,
        });
        tokio::spawn(heartbeats(fleet.clone()));
        tokio::spawn(acknowledgements(fleet.clone()));
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

    /// The store revision, read after this call began. Concurrent callers share one query: a
    /// caller joins the next read, never one already under way.
    pub async fn revision(self: &Arc<Self>) -> Result<i64, Error> {
        let (sender, receiver) = oneshot::channel();
        let lead = {
            let mut reads = self.reads.lock().expect("revision reads");
            reads.waiting.push(sender);
            !std::mem::replace(&mut reads.reading, true)
        };
        if lead {
            // A task of its own, so a caller that goes away does not strand the others.
            tokio::spawn(self.clone().read_for_waiting());
        }
        match receiver.await {
            Ok(Ok(revision)) => Ok(revision),
            _ => Err(Error::State("store_unavailable")),
        }
    }

    async fn read_for_waiting(self: Arc<Self>) {
        loop {
            let waiting = {
                let mut reads = self.reads.lock().expect("revision reads");
                if reads.waiting.is_empty() {
                    reads.reading = false;
                    return;
                }
                std::mem::take(&mut reads.waiting)
            };
            let read = read_revision(&self.db).await;
            if let Err(err) = &read {
                tracing::warn!(error = %err, "reading the store revision failed");
            }
            let read = read.map_err(|_| ());
            for sender in waiting {
                let _ = sender.send(read);
            }
        }
    }

    /// Whether this replica may still forward: its last heartbeat reached the store within
    /// the lease. Checked right before a credential is sent.
    pub fn lease_held(&self) -> bool {
        let sent = *self.last_heartbeat.lock().expect("heartbeat");
        sent.elapsed() < self.settings.lease
    }

    /// After a revocation at `revision` has committed: waits for this replica's requests
    /// still using `connections`, then until every other live replica has acknowledged the
    /// revision. Bounded by the longest a proxied request may take plus the lease; past that a
    /// WARN names the replicas that did not answer.
    pub async fn settle(&self, revision: i64, connections: &[&str]) {
        for connection_id in connections {
            self.cache.forget_connection(connection_id);
        }
        for connection_id in connections {
            self.gate.drain(connection_id).await;
        }
        let deadline = Instant::now()
            + self.gate.upstream_timeout()
            + self.settings.lease
            + self.settings.clock_skew
            + Duration::from_secs(5);
        let mut pause = Duration::from_millis(5);
        loop {
            match self.waiting_for(revision).await {
                Ok(waiting) if waiting.is_empty() => return,
                Ok(waiting) if Instant::now() >= deadline => {
                    tracing::warn!(
                        revision,
                        replicas = ?waiting,
                        "replicas did not acknowledge a revocation in time"
                    );
                    return;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "checking revocation acknowledgements failed");
                    if Instant::now() >= deadline {
                        return;
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Live replicas other than this one that have not acknowledged `revision`.
    async fn waiting_for(&self, revision: i64) -> Result<Vec<String>, sqlx::Error> {
        let alive_since =
            clock::now_ms() - (self.settings.lease + self.settings.clock_skew).as_millis() as i64;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM replicas WHERE id <> $1 AND acked_revision < $2 AND heartbeat_at > $3",
        )
        .bind(&self.id)
        .bind(revision)
        .bind(alive_since)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
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

    /// Acknowledges every revision up to the current one, after dropping and draining what
    /// each revoked.
    async fn acknowledge(&self) -> Result<(), sqlx::Error> {
        let acked = *self.acked.lock().expect("acked");
        let current = read_revision(&self.db).await?;
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

async fn acknowledgements(fleet: Arc<Fleet>) {
    let mut stop = fleet.stop.subscribe();
    loop {
        if let Err(err) = fleet.acknowledge().await {
            tracing::warn!(error = %err, "acknowledging revocations failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(fleet.settings.poll) => {}
            _ = stop.changed() => return,
        }
    }
}
