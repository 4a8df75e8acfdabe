//! The audit writer for SQLite: a thread with its own connection to the database file.
//!
//! SQLite has one writer at a time whichever connection it comes from, so this connection and
//! the pool's take turns on the database's write lock (waiting up to the busy timeout, as the
//! pool's connections do). It opens with the pool's pragmas, `synchronous = FULL` among them: a
//! batch is on disk when its calls are answered.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::{Batch, Job, RecentlyUsed};
use crate::audit;
use crate::clock;
use crate::error::Error;
use crate::store::SQLITE_PRAGMAS;

const CLAIM_SEQUENCE: &str =
    "UPDATE partners SET audit_seq = audit_seq + ?1 WHERE id = ?2 RETURNING audit_seq, audit_head";
const INSERT_EVENT: &str = "INSERT INTO audit_events (id, partner_id, seq, occurred_at, actor,
     action, vault_id, connection_id, integration, method, host, path, status, outcome, reason,
     duration_ms, prev_hash, hash)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
const MOVE_HEAD: &str = "UPDATE partners SET audit_head = ?1 WHERE id = ?2";
const MARK_USED: &str = "UPDATE connections SET last_used_at = ?1 WHERE id = ?2";

/// Opens the writer's connection (so a database it cannot open fails start-up) and starts the
/// thread, which ends when every [`super::AuditBatcher`] is dropped.
pub(super) fn spawn(path: PathBuf, queue: mpsc::Receiver<Job>) -> Result<(), Error> {
    let conn = open(&path).map_err(internal)?;
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || write(path, conn, queue))
        .map_err(|err| Error::Internal(err.into()))?;
    Ok(())
}

fn write(path: PathBuf, conn: Connection, mut queue: mpsc::Receiver<Job>) {
    let mut recently_used = RecentlyUsed::default();
    let mut held = Some(conn);
    while let Some(first) = queue.blocking_recv() {
        let mut batch = Batch::gather(first, &mut queue);
        let result = match held.take().map_or_else(|| open(&path), Ok) {
            Ok(mut conn) => {
                let result = commit(&mut conn, &mut batch, &mut recently_used);
                // After a failure the connection is closed (rolling back whatever the failed
                // transaction left) and the next batch opens a fresh one.
                if result.is_ok() {
                    held = Some(conn);
                }
                result
            }
            Err(err) => Err(Failure::Sqlite(err)),
        };
        batch.answer(result.map_err(|err| err.to_string()));
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
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

/// One transaction for the batch's events (see `audit::append_all` for the statements' roles),
/// then `last_used_at` outside it, as the PostgreSQL writer does.
fn commit(
    conn: &mut Connection,
    batch: &mut Batch,
    recently_used: &mut RecentlyUsed,
) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (partner_id, events) in std::mem::take(&mut batch.by_partner) {
        let (last_seq, head): (i64, String) = tx
            .prepare_cached(CLAIM_SEQUENCE)?
            .query_row(params![events.len() as i64, partner_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        let rows = audit::chain(&partner_id, last_seq, head, events).map_err(Failure::Refused)?;
        let mut insert = tx.prepare_cached(INSERT_EVENT)?;
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
    tx.commit()?;

    let now = clock::now_ms();
    for connection_id in &batch.used {
        if !recently_used.due(connection_id, now) {
            continue;
        }
        // Usage metadata only: a failure here loses a timestamp, never an event.
        if let Err(err) = conn
            .prepare_cached(MARK_USED)
            .and_then(|mut update| update.execute(params![now, connection_id]))
        {
            tracing::warn!(connection_id, error = %err, "advancing last_used_at failed");
        }
    }
    Ok(())
}

/// Why a batch was not committed; the transaction is rolled back either way.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Refused(Error),
}

fn internal(err: rusqlite::Error) -> Error {
    Error::Internal(anyhow::anyhow!(
        "opening the audit writer's connection: {err}"
    ))
}
