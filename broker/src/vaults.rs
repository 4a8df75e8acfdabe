//! Vaults: one per end user, each with its own age key pair. The public recipient is stored in
//! clear (depositing needs only it); the private identity is stored wrapped by the master key
//! and destroyed when the vault is deleted, which makes every credential ever sealed to it
//! unreadable (crypto-shredding).

use serde::Serialize;
use sqlx::AnyConnection;

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::connections::{self, RevokeContext};
use crate::error::Error;
use crate::idempotency::Idempotency;
use crate::ids::{self, Kind};
use crate::keys::MasterKeyRing;
use crate::pagination::{Page, PageRequest};
use crate::store::Db;
use crate::validate;
use crate::vault_batch::{NewVault, VaultWriter};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Vault {
    pub id: String,
    pub external_user_id: String,
    /// JSON object text.
    pub metadata: String,
    pub status: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

const VAULT_COLUMNS: &str = "id, external_user_id, metadata, status, created_at, revoked_at";

/// What `create` did.
pub enum Created {
    New(Vault),
    /// An earlier request with the same `Idempotency-Key` created this vault.
    Replayed(Vault),
}

/// The result of deleting a vault.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    pub id: String,
    pub status: &'static str,
    pub connections_revoked: i64,
}

/// Creates a vault and its key pair. A second active vault for the same `external_user_id`
/// is a conflict that names the existing vault.
///
/// The key pair is generated and wrapped here, on the caller's task; the rows and the audit
/// event are committed by the shared writer, together with other requests' (see
/// [`crate::vault_batch`]).
pub async fn create(
    writer: &VaultWriter,
    keys: &MasterKeyRing,
    tenant: &Tenant,
    external_user_id: &str,
    metadata: &serde_json::Value,
    idem: Option<&Idempotency>,
) -> Result<Created, Error> {
    validate::identifier(
        "external_user_id",
        external_user_id,
        validate::MAX_EXTERNAL_ID,
    )?;
    let metadata = validate::metadata(metadata)?;
    let id = ids::new(Kind::Vault);
    let key_pair = keys.new_vault_key(&id)?;

    let created = writer
        .create(NewVault {
            partner_id: tenant.partner_id().to_owned(),
            actor: tenant.actor().to_owned(),
            id,
            external_user_id: external_user_id.to_owned(),
            metadata,
            key_pair,
            idem: idem.cloned(),
            created_at: clock::now_ms(),
        })
        .await?;
    if let Created::New(vault) = &created {
        tracing::info!(partner_id = tenant.partner_id(), vault_id = %vault.id, "vault created");
    }
    Ok(created)
}

/// One of the tenant's vaults; another partner's vault is not found.
pub async fn get(db: &Db, tenant: &Tenant, vault_id: &str) -> Result<Vault, Error> {
    if !ids::is_valid(Kind::Vault, vault_id) {
        return Err(Error::NotFound("vault"));
    }
    let mut conn = db.pool().acquire().await?;
    read(&mut conn, tenant.partner_id(), vault_id)
        .await?
        .ok_or(Error::NotFound("vault"))
}

/// The vault `vault_id` of `partner_id`, read on `conn` (which may be inside a transaction).
pub(crate) async fn read(
    conn: &mut AnyConnection,
    partner_id: &str,
    vault_id: &str,
) -> Result<Option<Vault>, Error> {
    let sql = format!("SELECT {VAULT_COLUMNS} FROM vaults WHERE id = $1 AND partner_id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(vault_id)
        .bind(partner_id)
        .fetch_optional(conn)
        .await?)
}

/// Lists the tenant's vaults, oldest first, optionally only those of one `external_user_id`.
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    external_user_id: Option<&str>,
    page: &PageRequest,
) -> Result<Page<Vault>, Error> {
    if let Some(external) = external_user_id {
        validate::identifier("external_user_id", external, validate::MAX_EXTERNAL_ID)?;
    }
    let sql = format!(
        "SELECT {VAULT_COLUMNS} FROM vaults
         WHERE partner_id = $1 AND id > $2 AND ($3 = '' OR external_user_id = $3)
         ORDER BY id LIMIT $4"
    );
    let rows: Vec<Vault> = sqlx::query_as(&sql)
        .bind(tenant.partner_id())
        .bind(&page.after)
        .bind(external_user_id.unwrap_or(""))
        .bind(page.fetch())
        .fetch_all(db.pool())
        .await?;
    Ok(Page::from_rows(rows, page, |v| &v.id))
}

/// Deletes a vault: every connection is revoked and its ciphertext erased, and the wrapped
/// vault key is destroyed, so nothing ever sealed to this vault opens again. Deleting a
/// deleted vault answers the same result with no further change.
///
/// OAuth tokens are then revoked at their providers (best effort, recorded per connection in
/// the audit log); the transaction reads them before destroying them, and they are held in
/// memory only until the provider has answered.
pub async fn delete(
    ctx: &RevokeContext<'_>,
    tenant: &Tenant,
    vault_id: &str,
) -> Result<Deleted, Error> {
    if !ids::is_valid(Kind::Vault, vault_id) {
        return Err(Error::NotFound("vault"));
    }
    let db = ctx.db;
    let now = clock::now_ms();
    let mut tx = db.pool().begin().await?;
    // Status first, key material last: the rows are locked by the first write, and what they
    // held is read before it is destroyed.
    let changed: Option<(Option<Vec<u8>>, i64)> = sqlx::query_as(
        "UPDATE vaults SET status = 'revoked', revoked_at = $1, updated_at = $1
         WHERE id = $2 AND partner_id = $3 AND status = 'active'
         RETURNING wrapped_key, master_key_version",
    )
    .bind(now)
    .bind(vault_id)
    .bind(tenant.partner_id())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((wrapped_key, master_key_version)) = changed else {
        tx.rollback().await?;
        let vault = get(db, tenant, vault_id).await?;
        return Ok(Deleted {
            id: vault.id,
            status: "revoked",
            connections_revoked: 0,
        });
    };
    let revoked: Vec<(String, String, Option<Vec<u8>>, i64)> = sqlx::query_as(
        "UPDATE connections SET status = 'revoked', revoked_at = $1, updated_at = $1
         WHERE vault_id = $2 AND status <> 'revoked' RETURNING id, integration, sealed, seal_version",
    )
    .bind(now)
    .bind(vault_id)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("UPDATE connections SET sealed = NULL WHERE vault_id = $1")
        .bind(vault_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE vaults SET wrapped_key = NULL WHERE id = $1")
        .bind(vault_id)
        .execute(&mut *tx)
        .await?;
    for (connection_id, integration, _, _) in &revoked {
        let event = NewEvent::lifecycle(tenant.actor(), "connection.revoked")
            .vault(vault_id)
            .connection(connection_id)
            .integration(integration)
            .reason("vault_deleted");
        audit::append(&mut tx, tenant.partner_id(), event).await?;
    }
    audit::append(
        &mut tx,
        tenant.partner_id(),
        NewEvent::lifecycle(tenant.actor(), "vault.revoked").vault(vault_id),
    )
    .await?;
    let revoked_ids: Vec<&str> = revoked.iter().map(|(id, ..)| id.as_str()).collect();
    let revision = crate::fleet::bump(&mut tx, &revoked_ids).await?;
    tx.commit().await?;
    ctx.fleet.settle(revision, &revoked_ids).await;
    db.flush_destroyed().await;
    tracing::info!(
        partner_id = tenant.partner_id(),
        vault_id,
        connections = revoked.len(),
        "vault deleted"
    );
    let count = revoked.len() as i64;
    for (connection_id, integration, sealed, seal_version) in revoked {
        let captured = connections::Captured {
            connection_id,
            vault_id: vault_id.to_owned(),
            integration,
            sealed,
            seal_version,
            wrapped_key: wrapped_key.clone(),
            master_key_version,
        };
        if let Some(held) = connections::open_captured(ctx, tenant.partner_id(), captured).await? {
            connections::revoke_upstream(ctx, tenant.actor(), held).await?;
        }
    }
    Ok(Deleted {
        id: vault_id.to_owned(),
        status: "revoked",
        connections_revoked: count,
    })
}
