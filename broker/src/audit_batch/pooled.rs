//! The audit writer for PostgreSQL: a task that commits each batch through one pooled
//! connection.

use sqlx::Connection;
use sqlx::pool::PoolConnection;
use tokio::sync::{mpsc, oneshot};

use super::{Batch, Message, RecentlyUsed};
use crate::audit;
use crate::clock;
use crate::error::Error;
use crate::store::Db;

/// The writer keeps its connection from one batch to the next and takes a fresh one after a
/// failed batch. It ends on [`super::AuditWriter::stop`] or when every handle is dropped, and
/// says so on `stopped` once its connection is back in the pool.
pub(super) async fn write(
    db: Db,
    mut queue: mpsc::Receiver<Message>,
    stopped: oneshot::Sender<()>,
) {
    let mut recently_used = RecentlyUsed::default();
    let mut held: Option<PoolConnection<sqlx::Any>> = None;
    while let Some(first) = queue.recv().await {
        let Some(mut batch) = Batch::gather(first, &mut queue) else {
            break;
        };
        let result = commit(&db, &mut held, &mut batch)
            .await
            .map_err(|err| err.to_string());
        if result.is_err() {
            held = None;
        }
        let used = batch.answer(result);
        if let Some(conn) = held.as_mut() {
            mark_used(conn, &used, &mut recently_used).await;
        }
        if batch.last {
            break;
        }
    }
    drop(held);
    let _ = stopped.send(());
}

/// Commits a batch. Lock order matters on PostgreSQL, where several replicas' writers and the
/// lifecycle transactions run at once: the audit transaction locks only partner rows, in
/// partner order, each partner's events appended in arrival order.
async fn commit(
    db: &Db,
    held: &mut Option<PoolConnection<sqlx::Any>>,
    batch: &mut Batch,
) -> Result<(), Error> {
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(db.pool().acquire().await?),
    };
    let mut tx = conn.begin().await?;
    for (partner_id, events) in std::mem::take(&mut batch.by_partner) {
        // audit::append_all writes first, as every transaction here must (see store::mod).
        audit::append_all(&mut tx, &partner_id, events).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Advances `last_used_at` after the calls are answered, one row per statement outside any
/// transaction, so this writer never holds a connection row while it waits for a partner row —
/// the order a revocation takes them in.
async fn mark_used(
    conn: &mut PoolConnection<sqlx::Any>,
    used: &[String],
    recently_used: &mut RecentlyUsed,
) {
    let now = clock::now_ms();
    for connection_id in used {
        if !recently_used.due(connection_id, now) {
            continue;
        }
        // Usage metadata only: a failure here loses a timestamp, never an event.
        if let Err(err) = sqlx::query("UPDATE connections SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(connection_id)
            .execute(&mut **conn)
            .await
        {
            tracing::warn!(connection_id, error = %err, "advancing last_used_at failed");
        }
    }
}
