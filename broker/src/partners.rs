//! Partners: the platforms that integrate. Created, suspended and resumed by the operator from
//! the CLI; a suspended partner's keys all fail at once.

use serde::Serialize;

use crate::audit::{self, GENESIS, NewEvent};
use crate::auth::{Scope, Tenant};
use crate::clock;
use crate::error::Error;
use crate::ids::{self, Kind};
use crate::secret::SecretString;
use crate::store::Db;
use crate::{api_keys, validate};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub status: String,
    pub created_at: i64,
}

/// Creates a partner and its first key, with the `admin` scope. The key is returned once.
pub async fn create(db: &Db, name: &str) -> Result<(Partner, SecretString), Error> {
    validate::name("name", name)?;
    let now = clock::now_ms();
    let partner = Partner {
        id: ids::new(Kind::Partner),
        name: name.trim().to_owned(),
        status: "active".into(),
        created_at: now,
    };
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO partners (id, name, status, created_at, updated_at, audit_seq, audit_head)
         VALUES ($1, $2, 'active', $3, $3, 0, $4)",
    )
    .bind(&partner.id)
    .bind(&partner.name)
    .bind(now)
    .bind(GENESIS)
    .execute(&mut *tx)
    .await?;
    let key_id = ids::new(Kind::ApiKey);
    let (_, secret) =
        api_keys::insert(&mut tx, &partner.id, &key_id, "admin", &[Scope::Admin]).await?;
    audit::append(
        &mut tx,
        &partner.id,
        NewEvent::lifecycle("operator", "partner.created"),
    )
    .await?;
    let event =
        NewEvent::lifecycle("operator", "api_key.created").path(&format!("/v1/api-keys/{key_id}"));
    audit::append(&mut tx, &partner.id, event).await?;
    tx.commit().await?;
    Ok((partner, secret))
}

/// Sets a partner `active` or `suspended`.
pub async fn set_status(db: &Db, partner_id: &str, suspended: bool) -> Result<Partner, Error> {
    let status = if suspended { "suspended" } else { "active" };
    let mut revision = None;
    let mut tx = db.pool().begin().await?;
    let changed = sqlx::query(
        "UPDATE partners SET status = $1, updated_at = $2 WHERE id = $3 AND status <> $1",
    )
    .bind(status)
    .bind(clock::now_ms())
    .bind(partner_id)
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 1 {
        let action = if suspended {
            "partner.suspended"
        } else {
            "partner.resumed"
        };
        audit::append(&mut tx, partner_id, NewEvent::lifecycle("operator", action)).await?;
        revision = Some(crate::fleet::bump(&mut tx, &[]).await?);
    }
    let partner: Option<Partner> =
        sqlx::query_as("SELECT id, name, status, created_at FROM partners WHERE id = $1")
            .bind(partner_id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    if let Some(revision) = revision {
        crate::fleet::wait_for_replicas(db, revision).await;
    }
    partner.ok_or(Error::NotFound("partner"))
}

/// The partner behind a tenant.
pub async fn get(db: &Db, tenant: &Tenant) -> Result<Partner, Error> {
    sqlx::query_as("SELECT id, name, status, created_at FROM partners WHERE id = $1")
        .bind(tenant.partner_id())
        .fetch_optional(db.pool())
        .await?
        .ok_or(Error::NotFound("partner"))
}

/// Every partner, for the operator.
pub async fn list_all(db: &Db) -> Result<Vec<Partner>, Error> {
    Ok(
        sqlx::query_as("SELECT id, name, status, created_at FROM partners ORDER BY id")
            .fetch_all(db.pool())
            .await?,
    )
}
