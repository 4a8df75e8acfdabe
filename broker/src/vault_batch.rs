//! Group commit for vault creation.
//!
//! A created vault and its audit event must be committed before the 201 goes out. One
//! transaction per vault costs one fsync per vault, and on SQLite every concurrent creation
//! also queues for the single write lock, polling for it in the busy handler's sleeps. Here
//! requests generate and wrap their key pair themselves (the expensive part, off the writer),
//! then queue the rows; one writer commits whatever has queued while the previous commit was in
//! flight, in a single transaction, and answers every waiting request with its own outcome.
//!
//! Each request keeps its own result without savepoints: the idempotency claim and the vault
//! insert both use `ON CONFLICT DO NOTHING`, so a duplicate `external_user_id` or a replayed
//! `Idempotency-Key` is noticed without an error that would abort the shared transaction (on
//! PostgreSQL any failed statement does). A conflicting request's claim is removed again, as its
//! own rollback used to do. Two requests with one idempotency key never share a batch: the
//! later waits for the next one, and then replays what the first committed. Chain order is
//! commit order.

use std::collections::{BTreeMap, HashSet, VecDeque};

use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, NewEvent};
use crate::error::Error;
use crate::idempotency::{self, Idempotency};
use crate::keys::VaultKeyPair;
use crate::store::Db;
use crate::vaults::{Created, Vault};

/// Most vaults in one transaction.
const MAX_BATCH: usize = 256;

/// A vault ready to be stored: validated, its key pair generated and wrapped.
pub(crate) struct NewVault {
    pub partner_id: String,
    pub actor: String,
    pub id: String,
    pub external_user_id: String,
    /// JSON object text.
    pub metadata: String,
    pub key_pair: VaultKeyPair,
    pub idem: Option<Idempotency>,
    pub created_at: i64,
}

struct Job {
    vault: NewVault,
    done: oneshot::Sender<Result<Created, Error>>,
}

/// The handle requests create vaults through. Cloning shares the one writer.
#[derive(Clone)]
pub struct VaultWriter {
    jobs: mpsc::Sender<Job>,
}

impl VaultWriter {
    /// Starts the writer on the current Tokio runtime.
    pub fn start(db: Db) -> VaultWriter {
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write(db, queue));
        VaultWriter { jobs }
    }

    /// Stores `vault` and returns once its transaction has committed.
    pub(crate) async fn create(&self, vault: NewVault) -> Result<Created, Error> {
        let stopped = || Error::Internal(anyhow::anyhow!("the vault writer has stopped"));
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job { vault, done })
            .await
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

async fn write(db: Db, mut queue: mpsc::Receiver<Job>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        let first = match waiting.pop_front() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match waiting.pop_front() {
                Some(job) => jobs.push(job),
                None => match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                },
            }
        }
        let (batch, later) = one_per_idempotency_key(jobs);
        // The deferred keep their place ahead of anything that arrives after them.
        for job in later.into_iter().rev() {
            waiting.push_front(job);
        }
        commit_and_answer(&db, batch).await;
    }
}

/// Splits off every job whose idempotency key an earlier job of the batch already uses.
fn one_per_idempotency_key(jobs: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut keys = HashSet::new();
    jobs.into_iter().partition(|job| match &job.vault.idem {
        Some(idem) => keys.insert((job.vault.partner_id.clone(), idem.key.clone())),
        None => true,
    })
}

/// Commits `jobs` together and answers each. When the shared transaction fails before its
/// commit, every job is tried again in a transaction of its own, so that whatever broke it
/// fails only the request that caused it. A failed commit is not retried: it may have
/// happened, and a second attempt would answer a conflict with the request's own vault.
async fn commit_and_answer(db: &Db, jobs: Vec<Job>) {
    match commit(db, &jobs).await {
        Ok(outcomes) => answer(jobs, outcomes),
        Err(Failure::Staging(err)) if jobs.len() > 1 => {
            tracing::warn!(vaults = jobs.len(), error = %err, "vault batch failed; committing one by one");
            for job in jobs {
                match commit(db, std::slice::from_ref(&job)).await {
                    Ok(outcomes) => answer(vec![job], outcomes),
                    Err(failure) => fail(vec![job], failure.into_inner()),
                }
            }
        }
        Err(failure) => fail(jobs, failure.into_inner()),
    }
}

fn answer(jobs: Vec<Job>, outcomes: Vec<Result<Created, Error>>) {
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let _ = job.done.send(outcome);
    }
}

fn fail(jobs: Vec<Job>, err: Error) {
    let reason = err.to_string();
    tracing::error!(vaults = jobs.len(), error = %format!("{err:#}"), "vault batch not committed");
    for job in jobs {
        let _ = job.done.send(Err(Error::Internal(anyhow::anyhow!(
            "vault batch not committed: {reason}"
        ))));
    }
}

/// Where a batch failed.
enum Failure {
    /// Before the commit: nothing happened.
    Staging(Error),
    /// At the commit: the outcome is unknown.
    Commit(Error),
}

impl Failure {
    fn into_inner(self) -> Error {
        match self {
            Failure::Staging(err) | Failure::Commit(err) => err,
        }
    }
}

/// What the transaction decided for one job before the commit.
enum Staged {
    Pending,
    Inserted,
    Replay(String),
    Refused(Error),
}

/// Stores a batch in one transaction and returns each job's outcome, in job order.
///
/// Lock order matters on PostgreSQL, where other replicas' writers and lifecycle transactions
/// run at once. The batch takes its locks class by class, each class in sorted order:
/// idempotency keys (by partner and key), then the vaults' unique `external_user_id` entries
/// (by partner and external id), then partner rows (by partner, in `audit::append_all`), which
/// is the order a single creation took them in and the order `audit_batch` keeps for partner
/// rows. Two batches therefore never wait on each other in a cycle.
async fn commit(db: &Db, jobs: &[Job]) -> Result<Vec<Result<Created, Error>>, Failure> {
    let mut tx = db
        .pool()
        .begin()
        .await
        .map_err(|e| Failure::Staging(e.into()))?;
    let outcomes = stage(&mut tx, jobs).await.map_err(Failure::Staging)?;
    tx.commit().await.map_err(|e| Failure::Commit(e.into()))?;
    // Their ratio is the mean batch size: how many creations share one commit.
    metrics::counter!("connect_vault_batches_total").increment(1);
    metrics::counter!("connect_vault_batch_requests_total").increment(jobs.len() as u64);
    Ok(outcomes)
}

async fn stage(
    tx: &mut sqlx::AnyConnection,
    jobs: &[Job],
) -> Result<Vec<Result<Created, Error>>, Error> {
    let vaults: Vec<&NewVault> = jobs.iter().map(|job| &job.vault).collect();
    let mut staged: Vec<Staged> = vaults.iter().map(|_| Staged::Pending).collect();

    // Idempotency keys first: a transaction's first statement writes (see store::mod), and a
    // claim is an insert.
    let mut order: Vec<usize> = (0..vaults.len())
        .filter(|&i| vaults[i].idem.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            (
                &vaults[i].partner_id,
                vaults[i].idem.as_ref().map(|k| &k.key),
            )
        };
        key(a).cmp(&key(b))
    });
    for i in order {
        let vault = vaults[i];
        let idem = vault.idem.as_ref().expect("filtered on idem");
        staged[i] = match idempotency::claim(tx, &vault.partner_id, idem, &vault.id).await {
            Ok(None) => Staged::Pending,
            Ok(Some(existing)) => Staged::Replay(existing),
            Err(Error::IdempotencyMismatch) => Staged::Refused(Error::IdempotencyMismatch),
            Err(err) => return Err(err),
        };
    }

    let mut order: Vec<usize> = (0..vaults.len())
        .filter(|&i| matches!(staged[i], Staged::Pending))
        .collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| (&vaults[i].partner_id, &vaults[i].external_user_id);
        key(a).cmp(&key(b))
    });
    for i in order {
        staged[i] = insert(tx, vaults[i]).await?;
    }

    let mut events: BTreeMap<&str, Vec<NewEvent>> = BTreeMap::new();
    for (vault, staged) in vaults.iter().zip(&staged) {
        if matches!(staged, Staged::Inserted) {
            let event = NewEvent::lifecycle(&vault.actor, "vault.created").vault(&vault.id);
            events.entry(&vault.partner_id).or_default().push(event);
        }
    }
    for (partner_id, events) in events {
        audit::append_all(tx, partner_id, events).await?;
    }

    let mut outcomes = Vec::with_capacity(vaults.len());
    for (vault, staged) in vaults.iter().zip(staged) {
        outcomes.push(match staged {
            Staged::Inserted => Ok(Created::New(Vault {
                id: vault.id.clone(),
                external_user_id: vault.external_user_id.clone(),
                metadata: vault.metadata.clone(),
                status: "active".into(),
                created_at: vault.created_at,
                revoked_at: None,
            })),
            Staged::Replay(existing) => crate::vaults::read(tx, &vault.partner_id, &existing)
                .await?
                .map(Created::Replayed)
                .ok_or(Error::NotFound("vault")),
            Staged::Refused(err) => Err(err),
            Staged::Pending => unreachable!("every pending vault was inserted or refused"),
        });
    }
    Ok(outcomes)
}

/// Inserts one vault, or finds the active vault of the same `external_user_id` that it
/// conflicts with and withdraws its idempotency claim.
async fn insert(tx: &mut sqlx::AnyConnection, vault: &NewVault) -> Result<Staged, Error> {
    let inserted = sqlx::query(
        "INSERT INTO vaults (id, partner_id, external_user_id, metadata, status, recipient, wrapped_key,
             master_key_version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $8)
         ON CONFLICT DO NOTHING",
    )
    .bind(&vault.id)
    .bind(&vault.partner_id)
    .bind(&vault.external_user_id)
    .bind(&vault.metadata)
    .bind(&vault.key_pair.recipient)
    .bind(&vault.key_pair.wrapped)
    .bind(vault.key_pair.master_version)
    .bind(vault.created_at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Staged::Inserted);
    }
    let existing: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM vaults WHERE partner_id = $1 AND external_user_id = $2 AND status = 'active'",
    )
    .bind(&vault.partner_id)
    .bind(&vault.external_user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((existing_id,)) = existing else {
        // Only the generated id itself could have collided.
        return Err(Error::Internal(anyhow::anyhow!(
            "a new vault conflicted with no active vault"
        )));
    };
    if let Some(idem) = &vault.idem {
        idempotency::withdraw(tx, &vault.partner_id, idem).await?;
    }
    Ok(Staged::Refused(Error::Conflict {
        what: "vault for this external_user_id",
        existing_id: Some(existing_id),
    }))
}
