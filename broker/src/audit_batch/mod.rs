//! Group commit for the audit events of proxied calls.
//!
//! Every proxied call's event must be committed before its answer is returned. Committing each
//! one in its own transaction costs one fsync per call; here calls queue their events and one
//! writer commits whatever has queued while the previous commit was in flight, in a single
//! transaction, then answers every waiting call. Under load a batch holds many events and
//! costs one fsync; alone, a call waits for just its own commit. Chain order is commit order.
//!
//! Two writers share that shape. On PostgreSQL ([`pooled`]) the writer is a task holding a
//! pooled connection, since several replicas append at once and every statement is a network
//! round trip anyway. On SQLite ([`sqlite`]) it is a thread with its own connection to the
//! database file: a batch then runs as plain calls into SQLite instead of one hand-off to a
//! sqlx worker thread and back per statement, which cost two context switches each.

mod pooled;
mod sqlite;

use std::collections::{BTreeMap, HashMap};

use tokio::sync::{mpsc, oneshot};

use crate::audit::NewEvent;
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

/// What the writer is sent: events to commit, or the word to finish what is queued and stop.
/// Nearly every message is a job, so it is kept inline rather than boxed.
#[allow(clippy::large_enum_variant)]
enum Message {
    Job(Job),
    Stop,
}

/// The handle calls append through. Cloning shares the one writer.
#[derive(Clone)]
pub struct AuditBatcher {
    jobs: mpsc::Sender<Message>,
}

/// Stops the writer at shutdown.
pub struct AuditWriter {
    jobs: mpsc::Sender<Message>,
    stopped: oneshot::Receiver<()>,
}

impl AuditBatcher {
    /// Starts the writer: a thread on SQLite, a task on the current Tokio runtime on PostgreSQL.
    pub fn start(db: Db) -> Result<(AuditBatcher, AuditWriter), Error> {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        let (stop, stopped) = oneshot::channel();
        match db.sqlite_path() {
            Some(path) => sqlite::spawn(path.to_owned(), queue, stop)?,
            None => {
                tokio::spawn(pooled::write(db, queue, stop));
            }
        }
        let writer = AuditWriter {
            jobs: jobs.clone(),
            stopped,
        };
        Ok((AuditBatcher { jobs }, writer))
    }

    /// Whether the writer still takes events. It ends only at shutdown, or if it panicked; then
    /// every proxied call fails, and readiness says so.
    pub fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Appends `event` to `partner_id`'s chain and returns once it is committed. Only for events
    /// no webhook reports (the SQLite writer does not fill the webhook outbox, and both writers
    /// refuse them alike); those are appended in their change's own transaction.
    pub async fn append(
        &self,
        partner_id: &str,
        event: NewEvent,
        used: Option<&str>,
    ) -> Result<(), Error> {
        if crate::webhooks::EVENT_TYPES.contains(&event.action) {
            return Err(Error::Internal(anyhow::anyhow!(
                "{} is reported by webhooks and is appended in its change's transaction",
                event.action
            )));
        }
        // Refused here, alone, rather than failing a batch shared with other calls.
        crate::audit::check(&event)?;
        let (done, committed) = oneshot::channel();
        let job = Job {
            partner_id: partner_id.to_owned(),
            event,
            used: used.map(str::to_owned),
            done,
        };
        self.jobs
            .send(Message::Job(job))
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

impl AuditWriter {
    /// Commits what is queued, closes the writer's connection and waits (at most 15 s) for it.
    /// Appends after this fail.
    pub async fn stop(self) {
        if self.jobs.send(Message::Stop).await.is_err() {
            return;
        }
        if tokio::time::timeout(std::time::Duration::from_secs(15), self.stopped)
            .await
            .is_err()
        {
            tracing::warn!("the audit writer was still committing at shutdown");
        }
    }
}

/// A batch split into the calls to answer and the work to commit: each partner's events in
/// arrival order, partners in id order (the lock order), and the connections used, once each.
struct Batch {
    answers: Vec<oneshot::Sender<Result<(), String>>>,
    by_partner: BTreeMap<String, Vec<NewEvent>>,
    used: Vec<String>,
    /// A stop arrived while gathering: commit this batch, then end.
    last: bool,
}

impl Batch {
    /// The next batch: the first message and whatever else has queued, up to [`MAX_BATCH`]
    /// events. `None` once the writer is to stop.
    fn gather(first: Message, queue: &mut mpsc::Receiver<Message>) -> Option<Batch> {
        let mut batch = Batch {
            answers: Vec::new(),
            by_partner: BTreeMap::new(),
            used: Vec::new(),
            last: false,
        };
        let mut next = Some(first);
        while let Some(message) = next {
            let job = match message {
                Message::Job(job) => job,
                Message::Stop => {
                    batch.last = true;
                    break;
                }
            };
            batch.answers.push(job.done);
            batch
                .by_partner
                .entry(job.partner_id)
                .or_default()
                .push(job.event);
            batch.used.extend(job.used);
            next = match batch.answers.len() < MAX_BATCH {
                true => queue.try_recv().ok(),
                false => None,
            };
        }
        if batch.answers.is_empty() {
            return None;
        }
        batch.used.sort();
        batch.used.dedup();
        Some(batch)
    }

    /// Tells every waiting call how the commit went; returns the connections to mark used.
    fn answer(&mut self, result: Result<(), String>) -> Vec<String> {
        if let Err(reason) = &result {
            tracing::error!(events = self.answers.len(), error = %reason, "audit batch failed");
        }
        for answer in self.answers.drain(..) {
            let _ = answer.send(result.clone());
        }
        std::mem::take(&mut self.used)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Readiness relies on this: once the writer has ended, the handle says so.
    #[tokio::test]
    async fn the_handle_tells_whether_the_writer_is_running() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&crate::store::sqlite_url(dir.path()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let (batcher, writer) = AuditBatcher::start(db).unwrap();
        assert!(batcher.is_running());
        writer.stop().await;
        assert!(!batcher.is_running());
        let refused = batcher
            .append(
                "ptn_x",
                NewEvent::lifecycle("system", "proxy.request"),
                None,
            )
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("has stopped"), "{refused}");
    }
}
