//! Partner API keys: minted with a set of scopes, shown once, stored as a hash, revocable.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sqlx::AnyConnection;

use crate::audit::{self, NewEvent};
use crate::auth::{self, Scope, Tenant};
use crate::clock;
use crate::error::Error;
use crate::idempotency::{self, Idempotency};
use crate::ids::{self, Kind};
use crate::pagination::{Page, PageRequest};
use crate::secret::{ExposeSecret, SecretString};
use crate::store::Db;
use crate::validate;

/// Every key starts with this, so secret scanners can recognise a leaked one.
pub const KEY_PREFIX: &str = "acs_";

/// A key's metadata. The key itself is never stored or returned after creation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to tell keys apart in a list.
    pub key_prefix: String,
    pub scopes: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    pub fn scope_list(&self) -> Vec<Scope> {
        Scope::split(&self.scopes)
    }
}

/// What creating a key produced.
pub enum Created {
    /// A new key; `secret` is shown to the caller once.
    New { key: ApiKey, secret: SecretString },
    /// An earlier request with the same `Idempotency-Key` created this key; its secret cannot
    /// be shown again.
    Replayed { key_id: String },
}

fn new_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    SecretString::from(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Inserts a key for `partner_id` inside the caller's transaction.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    partner_id: &str,
    id: &str,
    name: &str,
    scopes: &[Scope],
) -> Result<(ApiKey, SecretString), Error> {
    let secret = new_secret();
    let key = ApiKey {
        id: id.to_owned(),
        name: name.to_owned(),
        key_prefix: secret.expose_secret()[..KEY_PREFIX.len() + 6].to_owned(),
        scopes: Scope::join(scopes),
        created_at: clock::now_ms(),
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, partner_id, name, key_hash, key_prefix, scopes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.id)
    .bind(partner_id)
    .bind(&key.name)
    .bind(auth::hash_key(&secret))
    .bind(&key.key_prefix)
    .bind(&key.scopes)
    .bind(key.created_at)
    .execute(&mut *conn)
    .await?;
    Ok((key, secret))
}

/// Mints a key. A key can only mint keys whose scopes it holds itself.
pub async fn create(
    db: &Db,
    tenant: &Tenant,
    name: &str,
    scopes: &[Scope],
    idem: Option<&Idempotency>,
) -> Result<Created, Error> {
    validate::name("name", name)?;
    if scopes.is_empty() {
        return Err(Error::invalid("scopes", "must name at least one scope"));
    }
    let caller_is_admin = tenant.scopes().contains(&Scope::Admin);
    if !caller_is_admin && scopes.iter().any(|s| !tenant.scopes().contains(s)) {
        return Err(Error::invalid(
            "scopes",
            "may only include scopes the calling key holds",
        ));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();

    let id = ids::new(Kind::ApiKey);
    let mut tx = db.pool().begin().await?;
    if let Some(idem) = idem
        && let Some(existing) = idempotency::claim(&mut tx, tenant.partner_id(), idem, &id).await?
    {
        tx.rollback().await?;
        return Ok(Created::Replayed { key_id: existing });
    }
    let (key, secret) = insert(&mut tx, tenant.partner_id(), &id, name, &scopes).await?;
    let event =
        NewEvent::lifecycle(tenant.actor(), "api_key.created").path(&format!("/v1/api-keys/{id}"));
    audit::append(&mut tx, tenant.partner_id(), event).await?;
    tx.commit().await?;
    tracing::info!(partner_id = tenant.partner_id(), key_id = %key.id, "api key created");
    Ok(Created::New { key, secret })
}

/// Lists the tenant's keys, revoked ones included.
pub async fn list(db: &Db, tenant: &Tenant, page: &PageRequest) -> Result<Page<ApiKey>, Error> {
    let rows: Vec<ApiKey> = sqlx::query_as(
        "SELECT id, name, key_prefix, scopes, created_at, revoked_at FROM api_keys
         WHERE partner_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(tenant.partner_id())
    .bind(&page.after)
    .bind(page.fetch())
    .fetch_all(db.pool())
    .await?;
    Ok(Page::from_rows(rows, page, |k| &k.id))
}

/// Revokes a key; it fails on its next request. Revoking a revoked key changes nothing.
pub async fn revoke(db: &Db, tenant: &Tenant, key_id: &str) -> Result<ApiKey, Error> {
    if !ids::is_valid(Kind::ApiKey, key_id) {
        return Err(Error::NotFound("api key"));
    }
    let mut revision = None;
    let mut tx = db.pool().begin().await?;
    let changed = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND partner_id = $3 AND revoked_at IS NULL",
    )
    .bind(clock::now_ms())
    .bind(key_id)
    .bind(tenant.partner_id())
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 1 {
        let event = NewEvent::lifecycle(tenant.actor(), "api_key.revoked")
            .path(&format!("/v1/api-keys/{key_id}"));
        audit::append(&mut tx, tenant.partner_id(), event).await?;
        revision = Some(crate::fleet::bump(&mut tx, &[]).await?);
    }
    let key: Option<ApiKey> = sqlx::query_as(
        "SELECT id, name, key_prefix, scopes, created_at, revoked_at FROM api_keys WHERE id = $1 AND partner_id = $2",
    )
    .bind(key_id)
    .bind(tenant.partner_id())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    if let Some(revision) = revision {
        crate::fleet::wait_for_replicas(db, revision).await;
    }
    key.ok_or(Error::NotFound("api key"))
}
