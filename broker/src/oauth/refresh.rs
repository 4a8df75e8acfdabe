//! Single-flight token refresh.
//!
//! A token set is refreshed when it expires within the margin, or when an upstream rejected the
//! version the caller used. At most one token request per connection is in flight: tasks of
//! this process queue on a per-connection lock, and replicas take a lease in the database
//! (`refresh_lease_until`, granted only while the row still holds the version that was read).
//! The rotated token set is committed before the lease is released, so every waiter re-reads
//! the new version instead of spending the old refresh token — which providers that rotate
//! refresh tokens would treat as reuse and answer by revoking the whole grant.
//!
//! Known gap, which no client of a rotating provider can close: a crash after the provider
//! rotated the refresh token and before the answer is committed loses the new token (the old
//! one is spent, the new one was only in this process's memory). The next refresh is then
//! refused with `invalid_grant` and the connection becomes `reauth_required`; the crash test
//! `crash::refresh` measures how often a kill lands there. A lease held by a killed process
//! also blocks that connection's refresh until it expires (`LEASE_MS`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::endpoint::{self, EndpointError};
use super::token_response::{self, TokenSet};
use crate::audit::{self, NewEvent};
use crate::clock;
use crate::credentials::{self, Opened};
use crate::error::Error;
use crate::integrations::{self, Integration};
use crate::keys::MasterKeyRing;
use crate::secret::{ExposeSecret, secret_bytes};
use crate::store::Db;

/// How long a refresh lease lasts; longer than the token request's own deadline.
const LEASE_MS: i64 = 30_000;
/// How long a caller waits for another replica's refresh before giving up.
const WAIT: Duration = Duration::from_secs(35);

/// The refresher shared by all requests of one process.
pub struct Refresher {
    /// Identifies this process in the lease column.
    owner: String,
    margin_ms: i64,
    allow_private: bool,
    http: reqwest::Client,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When each connection last had a refresh forced by an upstream 401.
    forced: Mutex<HashMap<String, std::time::Instant>>,
}

/// A refresh forced by an upstream 401 happens at most this often per connection and process,
/// so an upstream that rejects every token cannot turn requests into token requests.
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// A usable token set and the sealed version it came from.
pub struct Usable {
    pub tokens: TokenSet,
    pub version: i64,
}

impl Refresher {
    pub fn new(http: reqwest::Client, margin: Duration, allow_private: bool) -> Self {
        Refresher {
            owner: crate::ids::new(crate::ids::Kind::Request),
            margin_ms: margin.as_millis() as i64,
            allow_private,
            http,
            locks: Mutex::new(HashMap::new()),
            forced: Mutex::new(HashMap::new()),
        }
    }

    fn forced_recently(&self, connection_id: &str) -> bool {
        let forced = self.forced.lock().expect("forced refresh map");
        forced
            .get(connection_id)
            .is_some_and(|at| at.elapsed() < FORCED_REFRESH_INTERVAL)
    }

    fn record_forced(&self, connection_id: &str) {
        let mut forced = self.forced.lock().expect("forced refresh map");
        if forced.len() > 10_000 {
            forced.retain(|_, at| at.elapsed() < FORCED_REFRESH_INTERVAL);
        }
        forced.insert(connection_id.to_owned(), std::time::Instant::now());
    }

    fn lock_for(&self, connection_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("refresh lock map");
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(connection_id.to_owned()).or_default().clone()
    }

    fn due(
        &self,
        connection_id: &str,
        opened: &Opened,
        tokens: &TokenSet,
        rejected: Option<i64>,
    ) -> bool {
        if tokens.refresh_token.is_none() {
            return false;
        }
        (rejected == Some(opened.seal_version) && !self.forced_recently(connection_id))
            || opened
                .expires_at
                .is_some_and(|at| at - self.margin_ms <= clock::now_ms())
    }

    /// A token set for the connection, refreshed first when due. `rejected_version` is the
    /// version an upstream just answered 401 to, if any.
    pub async fn usable(
        &self,
        db: &Db,
        keys: &MasterKeyRing,
        integration: &Integration,
        connection_id: &str,
        rejected_version: Option<i64>,
    ) -> Result<Usable, Error> {
        let (opened, tokens) = open(db, keys, &integration.partner_id, connection_id).await?;
        if !self.due(connection_id, &opened, &tokens, rejected_version) {
            return Ok(Usable {
                tokens,
                version: opened.seal_version,
            });
        }
        let lock = self.lock_for(connection_id);
        let _queued = lock.lock().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (opened, tokens) = open(db, keys, &integration.partner_id, connection_id).await?;
            if !self.due(connection_id, &opened, &tokens, rejected_version) {
                return Ok(Usable {
                    tokens,
                    version: opened.seal_version,
                });
            }
            if self
                .take_lease(db, connection_id, opened.seal_version)
                .await?
            {
                if rejected_version == Some(opened.seal_version) {
                    self.record_forced(connection_id);
                }
                let result = self
                    .refresh(db, keys, integration, connection_id, opened, tokens)
                    .await;
                if result.is_err() {
                    // Every failure path clears the lease itself; this covers early exits.
                    let _ = self.drop_lease(db, connection_id).await;
                }
                return result;
            }
            if backing_off(db, connection_id).await? {
                // A recent attempt failed: no new token request until the back-off ends.
                return match opened.expires_at.is_none_or(|at| at > clock::now_ms()) {
                    true => Ok(Usable {
                        tokens,
                        version: opened.seal_version,
                    }),
                    false => Err(Error::State("upstream_unavailable")),
                };
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::State("refresh_in_progress"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clears this process's lease on a connection, if it still holds it.
    async fn drop_lease(&self, db: &Db, connection_id: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE connections SET refresh_lease_until = NULL, refresh_lease_owner = NULL
             WHERE id = $1 AND refresh_lease_owner = $2",
        )
        .bind(connection_id)
        .bind(&self.owner)
        .execute(db.pool())
        .await?;
        Ok(())
    }

    /// Takes the lease if no one holds it, the row still holds `version` and no back-off is due.
    async fn take_lease(&self, db: &Db, connection_id: &str, version: i64) -> Result<bool, Error> {
        let now = clock::now_ms();
        let taken = sqlx::query(
            "UPDATE connections SET refresh_lease_until = $1, refresh_lease_owner = $2
             WHERE id = $3 AND status = 'active' AND seal_version = $4
               AND (refresh_lease_until IS NULL OR refresh_lease_until < $5)
               AND (refresh_retry_at IS NULL OR refresh_retry_at <= $5)",
        )
        .bind(now + LEASE_MS)
        .bind(&self.owner)
        .bind(connection_id)
        .bind(version)
        .bind(now)
        .execute(db.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn refresh(
        &self,
        db: &Db,
        keys: &MasterKeyRing,
        integration: &Integration,
        connection_id: &str,
        opened: Opened,
        tokens: TokenSet,
    ) -> Result<Usable, Error> {
        let settings = integration
            .oauth
            .as_ref()
            .ok_or(Error::State("integration_is_not_oauth"))?;
        let secret = integrations::client_secret(db, keys, integration).await?;
        let refresh_token = tokens
            .refresh_token
            .as_ref()
            .expect("due() checked the refresh token");
        let result = endpoint::refresh(
            &self.http,
            settings,
            &secret,
            refresh_token,
            self.allow_private,
        )
        .await;
        let partner = &integration.partner_id;
        let event = |action: &'static str| {
            NewEvent::lifecycle("system", action)
                .vault(&opened.vault_id)
                .connection(connection_id)
                .integration(&integration.key)
        };
        match result {
            Ok((fresh, _warnings)) => {
                let merged = token_response::merge_refresh(&tokens, fresh);
                let expires_at = merged.expires_in.map(clock::expiry_after);
                let scopes = merged.scopes.as_ref().map(|s| s.join(" "));
                let sealed = secret_bytes(merged.to_sealed_bytes().to_vec());
                let mut tx = db.pool().begin().await?;
                let replaced = credentials::replace(
                    &mut tx,
                    connection_id,
                    &opened,
                    &sealed,
                    expires_at,
                    scopes.as_deref(),
                )
                .await?;
                if !replaced {
                    // Revoked while the token request was in flight: the provider has just
                    // issued tokens that nothing will ever use, so ask it to revoke them too.
                    tx.rollback().await?;
                    for (token, hint) in [
                        (merged.refresh_token.as_ref(), "refresh_token"),
                        (Some(&merged.access_token), "access_token"),
                    ] {
                        if let Some(token) = token {
                            endpoint::revoke(
                                &self.http,
                                settings,
                                &secret,
                                token,
                                hint,
                                self.allow_private,
                            )
                            .await;
                        }
                    }
                    let (status,): (String,) =
                        sqlx::query_as("SELECT status FROM connections WHERE id = $1")
                            .bind(connection_id)
                            .fetch_one(db.pool())
                            .await?;
                    return Err(Error::State(if status == "active" {
                        "refresh_in_progress"
                    } else {
                        "connection_revoked"
                    }));
                }
                release(&mut tx, connection_id, None).await?;
                audit::append(&mut tx, partner, event("connection.refreshed")).await?;
                tx.commit().await?;
                tracing::info!(connection_id, "token refreshed");
                Ok(Usable {
                    tokens: merged,
                    version: opened.seal_version + 1,
                })
            }
            Err(err) if err.oauth_code() == Some("invalid_grant") => {
                let mut tx = db.pool().begin().await?;
                sqlx::query(
                    "UPDATE connections SET status = 'reauth_required', refresh_lease_until = NULL, updated_at = $1
                     WHERE id = $2 AND status = 'active'",
                )
                .bind(clock::now_ms())
                .bind(connection_id)
                .execute(&mut *tx)
                .await?;
                audit::append(
                    &mut tx,
                    partner,
                    event("connection.reauth_required").reason("invalid_grant"),
                )
                .await?;
                crate::fleet::bump(&mut tx, &[]).await?;
                tx.commit().await?;
                tracing::info!(
                    connection_id,
                    "refresh token rejected; the user must reconnect"
                );
                Err(Error::State("reauth_required"))
            }
            Err(err) => {
                self.failed(
                    db,
                    partner,
                    connection_id,
                    &opened,
                    tokens,
                    err,
                    event("connection.refresh_failed"),
                )
                .await
            }
        }
    }

    /// A refresh that failed for a reason other than `invalid_grant`: the tokens are kept, the
    /// next attempt backs off, and the caller gets the current token while it is still valid.
    // Everything a failed attempt must record; bundling it into a struct would only rename it.
    #[allow(clippy::too_many_arguments)]
    async fn failed(
        &self,
        db: &Db,
        partner_id: &str,
        connection_id: &str,
        opened: &Opened,
        tokens: TokenSet,
        err: EndpointError,
        event: NewEvent,
    ) -> Result<Usable, Error> {
        let misconfigured = matches!(
            err.oauth_code(),
            Some("invalid_client" | "unauthorized_client")
        );
        let reason = if misconfigured {
            "invalid_client"
        } else if err.is_transient() {
            "transient"
        } else {
            "refused"
        };
        let (failures,): (i64,) =
            sqlx::query_as("SELECT refresh_failures FROM connections WHERE id = $1")
                .bind(connection_id)
                .fetch_one(db.pool())
                .await?;
        let backoff_ms = 1000i64
            .saturating_mul(1 << failures.clamp(0, 8))
            .min(300_000);
        let mut tx = db.pool().begin().await?;
        release(&mut tx, connection_id, Some(clock::now_ms() + backoff_ms)).await?;
        audit::append(&mut tx, partner_id, event.reason(reason)).await?;
        tx.commit().await?;
        tracing::warn!(connection_id, reason, error = %err, "token refresh failed; tokens kept");
        let still_valid = opened.expires_at.is_none_or(|at| at > clock::now_ms());
        match (misconfigured, still_valid) {
            (true, _) => Err(Error::State("integration_misconfigured")),
            (false, true) => Ok(Usable {
                tokens,
                version: opened.seal_version,
            }),
            (false, false) => Err(Error::State("upstream_unavailable")),
        }
    }
}

async fn backing_off(db: &Db, connection_id: &str) -> Result<bool, Error> {
    let (retry_at,): (Option<i64>,) =
        sqlx::query_as("SELECT refresh_retry_at FROM connections WHERE id = $1")
            .bind(connection_id)
            .fetch_one(db.pool())
            .await?;
    Ok(retry_at.is_some_and(|at| at > clock::now_ms()))
}

/// Clears the lease; `retry_at` sets a back-off (and counts a failure), `None` resets it.
async fn release(
    conn: &mut sqlx::AnyConnection,
    connection_id: &str,
    retry_at: Option<i64>,
) -> Result<(), Error> {
    let sql = if retry_at.is_some() {
        "UPDATE connections SET refresh_lease_until = NULL, refresh_lease_owner = NULL, refresh_retry_at = $1,
             refresh_failures = refresh_failures + 1 WHERE id = $2"
    } else {
        "UPDATE connections SET refresh_lease_until = NULL, refresh_lease_owner = NULL, refresh_retry_at = $1,
             refresh_failures = 0 WHERE id = $2"
    };
    sqlx::query(sql)
        .bind(retry_at)
        .bind(connection_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn open(
    db: &Db,
    keys: &MasterKeyRing,
    partner_id: &str,
    connection_id: &str,
) -> Result<(Opened, TokenSet), Error> {
    let opened = credentials::open_for_partner(db, keys, partner_id, connection_id).await?;
    let tokens = TokenSet::from_sealed_bytes(opened.secret.expose_secret())
        .map_err(|_| Error::Internal(anyhow::anyhow!("a sealed token set does not parse")))?;
    Ok((opened, tokens))
}
