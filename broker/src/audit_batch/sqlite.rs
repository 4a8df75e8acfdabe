//! The audit writer for SQLite: a thread with its own connection to the database file.
//!
//! SQLite has one writer at a time whichever connection it comes from, so this connection and
//! the pool's take turns on the database's write lock (waiting up to the busy timeout, as the
//! pool's connections do). It opens with the pool's pragmas, `synchronous = FULL` among them: a
//! batch is on disk when its calls are answered.
//!
//! Known shortcoming: the turns are not fair. SQLite keeps no queue of waiting writers; a pool
//! connection polls for the lock with growing sleeps, and under sustained load this thread
//! starts its next batch right after each commit, so a lifecycle write (a revocation, a
//! heartbeat) may wait a second or more for a gap (up to 1.0 s measured under the benchmark's
//! load), or fail after the busy timeout. A lock shared with the pool's write transactions
//! and granted in order would fix it; none exists yet.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{Batch, Message, RecentlyUsed};
use crate::audit::{self, CLAIM_SEQUENCE, INSERT_COLUMNS, MOVE_HEAD};
use crate::clock;
use crate::error::Error;
use crate::store::SQLITE_PRAGMAS;

const MARK_USED: &str = "UPDATE connections SET last_used_at = $1 WHERE id = $2";

/// Opens the writer's connection (so a database it cannot open fails start-up) and starts the
/// thread. It ends on [`super::AuditWriter::stop`] or when every handle is dropped, and says
/// so on `stopped` once its connection is closed.
pub(super) fn spawn(
    path: PathBuf,
    queue: mpsc::Receiver<Message>,
    stopped: oneshot::Sender<()>,
) -> Result<(), Error> {
    let conn = open(&path).map_err(|err| {
        Error::Internal(anyhow::anyhow!(
            "opening the audit writer's connection: {err}"
        ))
    })?;
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            write(&path, conn, queue);
            let _ = stopped.send(());
        })
        .map_err(|err| Error::Internal(err.into()))?;
    Ok(())
}

fn write(path: &Path, conn: Connection, mut queue: mpsc::Receiver<Message>) {
    let mut recently_used = RecentlyUsed::default();
    let mut held = Some(conn);
    while let Some(first) = queue.blocking_recv() {
        let Some(mut batch) = Batch::gather(first, &mut queue) else {
            break;
        };
        let result = match held.take().map_or_else(|| open(path), Ok) {
            Ok(mut conn) => {
                let result = commit(&mut conn, &mut batch);
                // After a failure the connection is closed (rolling back whatever the failed
                // transaction left) and the next batch opens a fresh one.
                if result.is_ok() {
                    held = Some(conn);
                }
                result
            }
            Err(err) => Err(Failure::Sqlite(err)),
        };
        let used = batch.answer(result.map_err(|err| err.to_string()));
        if let Some(conn) = &mut held {
            mark_used(conn, &used, &mut recently_used);
        }
        if batch.last {
            break;
        }
    }
}

/// A connection with the pool's pragmas, the busy timeout first.
pub(super) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    for pragma in SQLITE_PRAGMAS {
        // Some pragmas answer with a row (journal_mode), some do not; stepping once runs both.
        conn.prepare(pragma)?.query([])?.next()?;
    }
    Ok(conn)
}

/// One transaction for the batch's events; see `audit::append_all` for the statements' roles.
/// The events were checked when they were queued, so a failure here is the database's, unless
/// building the chain refuses an event after all ([`Failure::Refused`]).
///
/// rusqlite binds by position, and SQLite numbers `$n` parameters in the order they first
/// appear: the shared statements name theirs in ascending order, so position n is `$n`.
fn commit(conn: &mut Connection, batch: &mut Batch) -> Result<(), Failure> {
    let insert_event = format!(
        "{INSERT_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    );
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (partner_id, events) in std::mem::take(&mut batch.by_partner) {
        let (last_seq, head): (i64, String) = tx
            .prepare_cached(CLAIM_SEQUENCE)?
            .query_row(params![events.len() as i64, partner_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        let rows = audit::chain(&partner_id, last_seq, head, events).map_err(Failure::Refused)?;
        let mut insert = tx.prepare_cached(&insert_event)?;
        for row in &rows {
            insert.execute(params![
                row.id,
                partner_id,
                row.seq,
                row.occurred_at,
                row.actor,
                row.action,
                row.vault_id,
                row.connection_id,
                row.integration,
                row.method,
                row.host,
                row.path,
                row.status,
                row.outcome,
                row.reason,
                row.duration_ms,
                row.prev_hash,
                row.hash,
            ])?;
        }
        let head = &rows.last().expect("a partner in a batch has events").hash;
        tx.prepare_cached(MOVE_HEAD)?
            .execute(params![head, partner_id])?;
    }
    Ok(tx.commit()?)
}

/// Why a batch was not committed; its transaction is rolled back either way.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Refused(Error),
}

/// Advances `last_used_at` after the calls are answered, outside the batch's transaction, as the
/// PostgreSQL writer does, but in one transaction of its own: one sync, however many
/// connections are due.
fn mark_used(conn: &mut Connection, used: &[String], recently_used: &mut RecentlyUsed) {
    let now = clock::now_ms();
    let due: Vec<&String> = used
        .iter()
        .filter(|connection_id| recently_used.due(connection_id, now))
        .collect();
    if due.is_empty() {
        return;
    }
    let updated = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut update = tx.prepare_cached(MARK_USED)?;
            for connection_id in &due {
                update.execute(params![now, connection_id])?;
            }
        }
        tx.commit()
    })();
    // Usage metadata only: a failure here loses timestamps, never an event.
    if let Err(err) = updated {
        tracing::warn!(connections = due.len(), error = %err, "advancing last_used_at failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's connection must be as durable as the pool's: WAL, and an fsync per commit.
    #[test]
    fn the_writer_connection_is_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let conn = open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        let secure_delete: i64 = conn
            .query_row("PRAGMA secure_delete", [], |row| row.get(0))
            .unwrap();
        let foreign_keys: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(synchronous, 2, "synchronous = FULL");
        assert_eq!((secure_delete, foreign_keys), (1, 1));
    }
}
