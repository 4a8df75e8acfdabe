//! The delivery worker: one tokio task per replica that claims due outbox rows under a lease,
//! signs and POSTs them, and records each attempt.
//!
//! Claiming is one `UPDATE … RETURNING` that takes rows whose lease has passed and stamps them
//! with this claim's owner token; the outcome is recorded only if the token still matches. On
//! PostgreSQL the inner select also skips rows another replica has locked. Several replicas on
//! one database therefore never send the same row at the same time. Delivery is at least
//! once: a replica that dies after the receiver answered but before recording it leaves the
//! row to be sent again when its lease passes, with the same `webhook-id`.
//!
//! Signing follows Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the secret's decoded bytes.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::audit::{self, NewEvent};
use crate::clock;
use crate::error::Error;
use crate::ids::{self, Kind};
use crate::keys::live::LiveRing;
use crate::net;
use crate::secret::{ExposeSecret, SecretBytes};
use crate::store::{Backend, Db};

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The wait after each failed attempt; when it runs out the endpoint is disabled. With `n`
    /// entries an event gets `n + 1` attempts.
    pub schedule: Vec<Duration>,
    /// How often the worker looks for due rows when the last look found none.
    pub poll: Duration,
    /// How long a claim holds a row: longer than one attempt may take (the outbound client's
    /// 20 s deadline), so a live worker never loses a row it is sending.
    pub lease: Duration,
    /// Rows claimed, and sent concurrently, per round.
    pub batch: i64,
    /// Admit loopback and private receivers (`CONNECT_ALLOW_PRIVATE_UPSTREAMS`).
    pub allow_private: bool,
}

/// The default schedule: about 26 hours from the first attempt to the last.
pub const DEFAULT_SCHEDULE_SECS: &[u64] = &[5, 60, 300, 1800, 7200, 18000, 36000, 36000];

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            schedule: DEFAULT_SCHEDULE_SECS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            batch: 16,
            allow_private: false,
        }
    }
}

/// Parses a schedule written as comma-separated seconds (`5,60,300`; fractions allowed).
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let schedule = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<f64>()
                .ok()
                .filter(|secs| secs.is_finite() && *secs > 0.0 && *secs <= 7.0 * 86400.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{s}: expected seconds between 0 and 604800"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if schedule.is_empty() || schedule.len() > 32 {
        return Err("expected 1 to 32 comma-separated delays in seconds".into());
    }
    Ok(schedule)
}

/// The running worker; [`Worker::stop`] ends it.
pub struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    db: Db,
    keys: Arc<LiveRing>,
    http: reqwest::Client,
    settings: DeliverySettings,
}

impl Worker {
    /// Starts the worker. `http` is the hardened outbound client (see [`net`]).
    pub fn start(
        db: Db,
        keys: Arc<LiveRing>,
        http: reqwest::Client,
        settings: DeliverySettings,
    ) -> Worker {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            db,
            keys,
            http,
            settings,
        });
        let task = tokio::spawn(run(shared, stopped));
        Worker { stop, task }
    }

    /// Stops claiming and waits (at most 25 s) for the attempts in flight. Rows still held
    /// then are sent again by the next worker once their lease passes.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(25), self.task)
            .await
            .is_err()
        {
            tracing::warn!("webhook deliveries still in flight at shutdown");
        }
    }
}

async fn run(shared: Arc<Shared>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let worked = match round(&shared).await {
            Ok(count) => count > 0,
            Err(err) => {
                tracing::warn!(error = %err, "webhook delivery round failed");
                false
            }
        };
        if !worked {
            tokio::select! {
                _ = tokio::time::sleep(shared.settings.poll) => {}
                _ = stopped.changed() => return,
            }
        }
    }
}

/// A claimed row.
#[derive(sqlx::FromRow)]
struct Claimed {
    webhook_id: String,
    event_id: String,
    partner_id: String,
    payload: String,
    attempts: i64,
}

/// Claims due rows and sends them concurrently; returns how many were claimed.
async fn round(shared: &Shared) -> Result<usize, Error> {
    let owner = ids::new(Kind::Request);
    let claimed = claim(shared, &owner).await?;
    let count = claimed.len();
    let owner = owner.as_str();
    futures_util::stream::iter(claimed)
        .for_each_concurrent(None, |row| async move {
            let webhook_id = row.webhook_id.clone();
            if let Err(err) = attempt(shared, owner, row).await {
                tracing::warn!(webhook_id, error = %err, "recording a webhook attempt failed");
            }
        })
        .await;
    Ok(count)
}

async fn claim(shared: &Shared, owner: &str) -> Result<Vec<Claimed>, Error> {
    let now = clock::now_ms();
    let lease_until = now + shared.settings.lease.as_millis() as i64;
    let skip_locked = match shared.db.backend() {
        Backend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The outer conditions repeat the inner ones: PostgreSQL re-checks them against a row that
    // another claim changed meanwhile, so a row is never claimed twice.
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until = $1, lease_owner = $2
         WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
           AND (webhook_id, event_id) IN (
             SELECT d.webhook_id, d.event_id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status = 'pending' AND w.status = 'active' AND d.next_attempt_at <= $3
               AND (d.lease_until IS NULL OR d.lease_until <= $3)
             ORDER BY d.next_attempt_at LIMIT $4 {skip_locked})
         RETURNING webhook_id, event_id, partner_id, payload, attempts"
    );
    Ok(sqlx::query_as(&sql)
        .bind(lease_until)
        .bind(owner)
        .bind(now)
        .bind(shared.settings.batch)
        .fetch_all(shared.db.pool())
        .await?)
}

/// What one attempt came to.
struct Outcome {
    delivered: bool,
    status: Option<i64>,
    /// A code, never the receiver's words.
    error: Option<&'static str>,
}

/// Sends one claimed row and records the outcome.
#[tracing::instrument(skip_all, fields(webhook_id = %row.webhook_id, event_id = %row.event_id))]
async fn attempt(shared: &Shared, owner: &str, row: Claimed) -> Result<(), Error> {
    let endpoint: Option<(String, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT url, secret_sealed, master_key_version FROM webhooks WHERE id = $1 AND partner_id = $2",
    )
    .bind(&row.webhook_id)
    .bind(&row.partner_id)
    .fetch_optional(shared.db.pool())
    .await?;
    // Deleted meanwhile: its deliveries went with it.
    let Some((url, sealed, version)) = endpoint else {
        return Ok(());
    };
    let binding = super::secret_binding(&row.partner_id, &row.webhook_id, version);
    let key = shared
        .keys
        .current()
        .open_from_master(version, &binding, &sealed)?;
    let outcome = send(shared, &url, &key, &row).await;
    record(shared, owner, &row, outcome).await
}

/// Vets the URL again, signs and POSTs. The client resolves the name and connects only to
/// addresses that pass vetting.
async fn send(shared: &Shared, url: &str, key: &SecretBytes, row: &Claimed) -> Outcome {
    let failed = |error| Outcome {
        delivered: false,
        status: None,
        error: Some(error),
    };
    let Ok(url) = net::vet(url, shared.settings.allow_private) else {
        return failed("url_refused");
    };
    let timestamp = clock::now_ms() / 1000;
    let signature = sign(key, &row.event_id, timestamp, row.payload.as_bytes());
    let sent = shared
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &row.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", format!("v1,{signature}"))
        .body(row.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status();
            Outcome {
                delivered: status.is_success(),
                status: Some(i64::from(status.as_u16())),
                error: (!status.is_success()).then_some("http_status"),
            }
        }
        Err(err) if net::is_blocked(&err) => failed("address_refused"),
        Err(err) if err.is_timeout() => failed("timeout"),
        Err(err) if err.is_connect() => failed("connect_failed"),
        Err(_) => failed("transport_error"),
    }
}

/// The base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"` under `key`.
pub fn sign(key: &SecretBytes, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.expose_secret()).expect("HMAC takes keys of any size");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Records an attempt: delivered, due again after the schedule's next delay, or given up,
/// which disables the endpoint (audited, and a WARN naming it).
async fn record(
    shared: &Shared,
    owner: &str,
    row: &Claimed,
    outcome: Outcome,
) -> Result<(), Error> {
    let now = clock::now_ms();
    let attempts = row.attempts + 1;
    let delay = usize::try_from(row.attempts)
        .ok()
        .and_then(|done| shared.settings.schedule.get(done));
    let (status, next_attempt_at) = match (outcome.delivered, delay) {
        (true, _) => ("delivered", now),
        (false, Some(delay)) => ("pending", now + delay.as_millis() as i64),
        (false, None) => ("failed", now),
    };
    let mut tx = shared.db.pool().begin().await?;
    let updated = sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = $2, last_status = $3, last_error = $4,
             next_attempt_at = $5, delivered_at = $6, lease_until = NULL, lease_owner = NULL
         WHERE webhook_id = $7 AND event_id = $8 AND lease_owner = $9",
    )
    .bind(status)
    .bind(attempts)
    .bind(outcome.status)
    .bind(outcome.error)
    .bind(next_attempt_at)
    .bind(outcome.delivered.then_some(now))
    .bind(&row.webhook_id)
    .bind(&row.event_id)
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        // The lease passed and another worker holds the row now, or the endpoint was deleted.
        tx.rollback().await?;
        return Ok(());
    }
    if status == "failed" {
        disable(&mut tx, row).await?;
    }
    tx.commit().await?;
    match status {
        "delivered" => tracing::info!(attempts, "webhook delivered"),
        "pending" => tracing::info!(
            attempts,
            status = outcome.status,
            error = outcome.error,
            "webhook attempt failed; will retry"
        ),
        _ => {}
    }
    Ok(())
}

async fn disable(tx: &mut sqlx::AnyConnection, row: &Claimed) -> Result<(), Error> {
    let disabled = sqlx::query(
        "UPDATE webhooks SET status = 'disabled', disabled_at = $1 WHERE id = $2 AND status = 'active'",
    )
    .bind(clock::now_ms())
    .bind(&row.webhook_id)
    .execute(&mut *tx)
    .await?;
    if disabled.rows_affected() == 1 {
        let event = NewEvent::lifecycle("system", "webhook.disabled")
            .path(&format!("/v1/webhooks/{}", row.webhook_id))
            .reason("retries_exhausted");
        audit::append(tx, &row.partner_id, event).await?;
        tracing::warn!(
            webhook_id = %row.webhook_id,
            partner_id = %row.partner_id,
            "webhook endpoint disabled: every retry of an event failed"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_in_seconds() {
        assert_eq!(
            parse_schedule("5, 60,0.5").unwrap(),
            vec![
                Duration::from_secs(5),
                Duration::from_secs(60),
                Duration::from_millis(500)
            ]
        );
        for bad in ["", "0", "-1", "x", "1,,nan", "999999999"] {
            assert!(parse_schedule(bad).is_err(), "case {bad:?}");
        }
    }

    #[test]
    fn signs_like_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &crate::secret::secret_bytes(key),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
