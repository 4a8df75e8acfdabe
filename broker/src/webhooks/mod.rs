//! Webhooks: endpoints a partner registers to hear about lifecycle changes, signed the
//! Standard Webhooks way and retried until they answer.
//!
//! - this module: registering, listing and deleting endpoints, and their signing secrets;
//! - [`outbox`]: the delivery rows written in the same transaction as the change they report;
//! - [`delivery`]: the worker that claims due rows under a lease, signs, sends and retries.
//!
//! The signing secret is 32 random bytes, shown once as `whsec_<base64>` and stored sealed to
//! the master key (like an integration's client secret). An endpoint URL is vetted like any
//! outbound target: https and public addresses only, unless the operator allows private
//! upstreams; it is vetted again, and its name resolved and vetted, on every delivery.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::error::Error;
use crate::idempotency::{self, Idempotency};
use crate::ids::{self, Kind};
use crate::keys::{Binding, MasterKeyRing};
use crate::net::{self, ResolveError, ResolverSettings};
use crate::pagination::{Page, PageRequest};
use crate::secret::{ExposeSecret, SecretString, secret_bytes};
use crate::store::Db;

pub mod delivery;
pub mod outbox;

/// The event types an endpoint may subscribe to (API.md, "Audit and webhooks"). Each is the
/// audit action that records the change.
pub const EVENT_TYPES: &[&str] = &[
    "connection.created",
    "connection.refreshed",
    "connection.reauth_required",
    "connection.revoked",
    "vault.revoked",
];

/// Standard Webhooks' prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The longest endpoint URL accepted.
const MAX_URL_LEN: usize = 2048;

/// The purpose under which a signing secret is sealed to the master key.
const SEAL_PURPOSE: &str = "webhook_secret";

/// A registered endpoint. The signing secret is not part of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Space-separated event types.
    pub events: String,
    /// `active` or `disabled`; `deleted` only in the answer to a delete.
    pub status: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

impl Webhook {
    pub fn event_list(&self) -> Vec<&str> {
        self.events.split_whitespace().collect()
    }
}

const WEBHOOK_COLUMNS: &str = "id, url, events, status, created_at, disabled_at";

/// What creating an endpoint produced.
pub enum Created {
    /// A new endpoint; `secret` (`whsec_…`) is shown to the caller once.
    New {
        webhook: Webhook,
        secret: SecretString,
    },
    /// An earlier request with the same `Idempotency-Key` created this endpoint; its secret
    /// cannot be shown again.
    Replayed { webhook_id: String },
}

/// Registers an endpoint for `events` after vetting `url` (scheme, literal address, and every
/// address its name resolves to).
pub async fn create(
    db: &Db,
    keys: &MasterKeyRing,
    resolver: &ResolverSettings,
    tenant: &Tenant,
    url: &str,
    events: &[&str],
    idem: Option<&Idempotency>,
) -> Result<Created, Error> {
    let events = validate_events(events)?;
    vet_url(resolver, url).await?;

    let id = ids::new(Kind::Webhook);
    let mut raw = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let raw = secret_bytes(raw);
    let secret = SecretString::from(format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(raw.expose_secret())
    ));
    let partner_id = tenant.partner_id();
    let binding = |version| secret_binding(partner_id, &id, version);
    let (sealed, version) = keys.seal_to_master(binding, raw.expose_secret())?;
    let webhook = Webhook {
        id: id.clone(),
        url: url.to_owned(),
        events: events.join(" "),
        status: "active".into(),
        created_at: clock::now_ms(),
        disabled_at: None,
    };

    let mut tx = db.pool().begin().await?;
    if let Some(idem) = idem
        && let Some(existing) = idempotency::claim(&mut tx, partner_id, idem, &id).await?
    {
        tx.rollback().await?;
        return Ok(Created::Replayed {
            webhook_id: existing,
        });
    }
    sqlx::query(
        "INSERT INTO webhooks (id, partner_id, url, events, secret_sealed, master_key_version, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)",
    )
    .bind(&webhook.id)
    .bind(partner_id)
    .bind(&webhook.url)
    .bind(&webhook.events)
    .bind(&sealed)
    .bind(version)
    .bind(webhook.created_at)
    .execute(&mut *tx)
    .await?;
    let event =
        NewEvent::lifecycle(tenant.actor(), "webhook.created").path(&format!("/v1/webhooks/{id}"));
    audit::append(&mut tx, partner_id, event).await?;
    tx.commit().await?;
    tracing::info!(partner_id, webhook_id = %id, "webhook created");
    Ok(Created::New { webhook, secret })
}

/// Known event types, each once, in a stable order.
fn validate_events<'a>(events: &[&'a str]) -> Result<Vec<&'a str>, Error> {
    if events.is_empty() {
        return Err(Error::invalid(
            "events",
            "must name at least one event type",
        ));
    }
    if let Some(unknown) = events.iter().find(|e| !EVENT_TYPES.contains(e)) {
        // Only reachable from library callers: the API's wire type refuses unknown names.
        let shown: String = unknown.chars().take(64).collect();
        return Err(Error::invalid(
            "events",
            format!("{shown} is not an event type"),
        ));
    }
    let mut events = events.to_vec();
    events.sort_unstable();
    events.dedup();
    Ok(events)
}

/// The registration-time check: the URL itself, then the addresses its name resolves to now.
async fn vet_url(resolver: &ResolverSettings, url: &str) -> Result<(), Error> {
    if url.len() > MAX_URL_LEN {
        return Err(Error::invalid(
            "url",
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let parsed =
        net::vet(url, resolver.allow_private).map_err(|e| Error::invalid("url", e.to_string()))?;
    if let Some(url::Host::Domain(name)) = parsed.host() {
        match net::resolve_vetted(resolver, name).await {
            Ok(_) => {}
            Err(ResolveError::NotFound) => {
                return Err(Error::invalid("url", "the host name does not resolve"));
            }
            Err(ResolveError::Blocked(_)) => {
                return Err(Error::invalid(
                    "url",
                    "the host name resolves only to loopback, private or reserved addresses",
                ));
            }
        }
    }
    Ok(())
}

/// One of the tenant's endpoints; another partner's is not found.
pub async fn get(db: &Db, tenant: &Tenant, webhook_id: &str) -> Result<Webhook, Error> {
    if !ids::is_valid(Kind::Webhook, webhook_id) {
        return Err(Error::NotFound("webhook"));
    }
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND partner_id = $2");
    sqlx::query_as(&sql)
        .bind(webhook_id)
        .bind(tenant.partner_id())
        .fetch_optional(db.pool())
        .await?
        .ok_or(Error::NotFound("webhook"))
}

/// Lists the tenant's endpoints, oldest first.
pub async fn list(db: &Db, tenant: &Tenant, page: &PageRequest) -> Result<Page<Webhook>, Error> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE partner_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    let rows: Vec<Webhook> = sqlx::query_as(&sql)
        .bind(tenant.partner_id())
        .bind(&page.after)
        .bind(page.fetch())
        .fetch_all(db.pool())
        .await?;
    Ok(Page::from_rows(rows, page, |w| &w.id))
}

/// Deletes an endpoint, its sealed secret and its deliveries, pending ones included: nothing
/// more is sent to it. Answers the endpoint as it was, with status `deleted`.
pub async fn delete(db: &Db, tenant: &Tenant, webhook_id: &str) -> Result<Webhook, Error> {
    if !ids::is_valid(Kind::Webhook, webhook_id) {
        return Err(Error::NotFound("webhook"));
    }
    let partner_id = tenant.partner_id();
    let mut tx = db.pool().begin().await?;
    let sql = format!(
        "DELETE FROM webhooks WHERE id = $1 AND partner_id = $2 RETURNING {WEBHOOK_COLUMNS}"
    );
    // The delete is the first statement and a write (see store::mod); the deliveries go with
    // the row (ON DELETE CASCADE), so a worker holding one of them records its outcome on
    // nothing.
    let deleted: Option<Webhook> = sqlx::query_as(&sql)
        .bind(webhook_id)
        .bind(partner_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(mut webhook) = deleted else {
        tx.rollback().await?;
        return Err(Error::NotFound("webhook"));
    };
    sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
        .bind(webhook_id)
        .execute(&mut *tx)
        .await?;
    let event = NewEvent::lifecycle(tenant.actor(), "webhook.deleted")
        .path(&format!("/v1/webhooks/{webhook_id}"));
    audit::append(&mut tx, partner_id, event).await?;
    tx.commit().await?;
    tracing::info!(partner_id, webhook_id, "webhook deleted");
    webhook.status = "deleted".into();
    Ok(webhook)
}

/// One delivery of one event to one endpoint, as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    /// A code (`timeout`, `connect_failed`, `address_refused`, `url_refused`, `transport_error`,
    /// `http_status`), never a message from the receiver.
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// Lists the deliveries of one of the tenant's endpoints, oldest event first.
pub async fn deliveries(
    db: &Db,
    tenant: &Tenant,
    webhook_id: &str,
    page: &PageRequest,
) -> Result<Page<Delivery>, Error> {
    get(db, tenant, webhook_id).await?;
    let rows: Vec<Delivery> = sqlx::query_as(
        "SELECT event_id, event_type, status, attempts, last_status, last_error, next_attempt_at,
                created_at, delivered_at
         FROM webhook_deliveries WHERE webhook_id = $1 AND partner_id = $2 AND event_id > $3
         ORDER BY event_id LIMIT $4",
    )
    .bind(webhook_id)
    .bind(tenant.partner_id())
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    Ok(Page::from_rows(rows, page, |d| &d.event_id))
}

/// The binding of an endpoint's sealed signing secret (also used by master-key rotation).
pub(crate) fn secret_binding(partner_id: &str, webhook_id: &str, master_version: i64) -> Binding {
    Binding::partner_secret(SEAL_PURPOSE, partner_id, webhook_id, master_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked_deduplicated_and_ordered() {
        assert!(validate_events(&[]).is_err());
        assert!(validate_events(&["connection.deleted"]).is_err());
        assert_eq!(
            validate_events(&["vault.revoked", "connection.created", "vault.revoked"]).unwrap(),
            vec!["connection.created", "vault.revoked"]
        );
    }
}
