//! Group commit for the audit events of proxied calls.
//!
//! Every proxied call's event must be committed before its answer is returned. Committing each
//! one in its own transaction costs one fsync per call; here calls queue their events and one
//! writer commits whatever has queued while the previous commit was in flight, in a single
//! transaction, then answers every waiting call. Under load a batch holds many events and
//! costs one fsync; alone, a call waits for just its own commit. Chain order is commit order.

use std::collections::{BTreeMap, HashMap};

use sqlx::Connection;
use sqlx::pool::PoolConnection;
use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, NewEvent};
use crate::clock;
use crate::error::Error;
use crate::store::Db;

/// Most events in one transaction.
const MAX_BATCH: usize = 256;

struct Job {
    partner_id: String,
    event: NewEvent,
    /// A connection whose `last_used_at` this call advances.
    used: Option<String>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle calls append through. Cloning shares the one writer.
#[derive(Clone)]
pub struct AuditBatcher {
    jobs: mpsc::Sender<Job>,
}

impl AuditBatcher {
    /// Starts the writer on the current Tokio runtime.
    pub fn start(db: Db) -> AuditBatcher {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write(db, queue));
        AuditBatcher { jobs }
    }

    /// Appends `event` to `partner_id`'s chain and returns once it is committed.
    pub async fn append(
        &self,
        partner_id: &str,
        event: NewEvent,
        used: Option<&str>,
    ) -> Result<(), Error> {
        let (done, committed) = oneshot::channel();
        let job = Job {
            partner_id: partner_id.to_owned(),
            event,
            used: used.map(str::to_owned),
            done,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the audit writer has stopped")))?;
        committed
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the audit writer has stopped")))?
            .map_err(|reason| {
                Error::Internal(anyhow::anyhow!("audit batch not committed: {reason}"))
            })
    }
}

/// The writer keeps one connection for itself: on SQLite its page cache then stays warm from one
/// batch to the next instead of being reread on whichever pooled connection comes up. It is
/// given back (and a fresh one taken) after a failed batch.
async fn write(db: Db, mut queue: mpsc::Receiver<Job>) {
    let mut recently_used = RecentlyUsed::default();
    let mut held: Option<PoolConnection<sqlx::Any>> = None;
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (answers, work): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|job| (job.done, (job.partner_id, job.event, job.used)))
            .unzip();
        let result = commit(&db, &mut held, work, &mut recently_used)
            .await
            .map_err(|err| err.to_string());
        if let Err(reason) = &result {
            held = None;
            tracing::error!(events = answers.len(), error = %reason, "audit batch failed");
        }
        for answer in answers {
            let _ = answer.send(result.clone());
        }
    }
}

/// Commits a batch. Lock order matters on PostgreSQL, where several replicas' writers and the
/// lifecycle transactions run at once: the audit transaction locks only partner rows, in
/// partner order, each partner's events appended in arrival order; `last_used_at` is advanced
/// after it, one row per statement outside any transaction, so this writer never holds a
/// connection row while it waits for a partner row — the order a revocation takes them in.
async fn commit(
    db: &Db,
    held: &mut Option<PoolConnection<sqlx::Any>>,
    work: Vec<(String, NewEvent, Option<String>)>,
    recently_used: &mut RecentlyUsed,
) -> Result<(), Error> {
    let mut by_partner: BTreeMap<String, Vec<NewEvent>> = BTreeMap::new();
    let mut used: Vec<String> = Vec::new();
    for (partner_id, event, connection_id) in work {
        by_partner.entry(partner_id).or_default().push(event);
        used.extend(connection_id);
    }
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(db.pool().acquire().await?),
    };
    let mut tx = conn.begin().await?;
    for (partner_id, events) in by_partner {
        // audit::append_all writes first, as every transaction here must (see store::mod).
        audit::append_all(&mut tx, &partner_id, events).await?;
    }
    tx.commit().await?;

    used.sort();
    used.dedup();
    let now = clock::now_ms();
    for connection_id in used {
        if !recently_used.due(&connection_id, now) {
            continue;
        }
        // Usage metadata only: a failure here loses a timestamp, never an event.
        if let Err(err) = sqlx::query("UPDATE connections SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&connection_id)
            .execute(&mut **conn)
            .await
        {
            tracing::warn!(connection_id, error = %err, "advancing last_used_at failed");
        }
    }
    Ok(())
}

/// `last_used_at` is kept to within [`LAST_USED_PRECISION_MS`]: a connection in steady use costs
/// one row write per that period, not one per call.
const LAST_USED_PRECISION_MS: i64 = 30_000;

/// When this writer last advanced each connection's `last_used_at`; bounded by forgetting
/// entries older than the precision whenever it grows large.
#[derive(Default)]
struct RecentlyUsed {
    written: HashMap<String, i64>,
}

impl RecentlyUsed {
    fn due(&mut self, connection_id: &str, now: i64) -> bool {
        if self
            .written
            .get(connection_id)
            .is_some_and(|at| now - at < LAST_USED_PRECISION_MS)
        {
            return false;
        }
        if self.written.len() >= 100_000 {
            self.written
                .retain(|_, at| now - *at < LAST_USED_PRECISION_MS);
        }
        self.written.insert(connection_id.to_owned(), now);
        true
    }
}
