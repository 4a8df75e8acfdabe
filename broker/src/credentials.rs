//! The sealing seam: deposit a credential into a vault with its public key alone, and open it
//! on the injection path. OAuth token sets and API keys both go through here; the OAuth broker
//! and the proxy build on it.

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::error::Error;
use crate::ids::{self, Kind};
use crate::keys::master::parse_recipient;
use crate::keys::{Binding, MasterKeyRing, seal};
use crate::secret::{ExposeSecret, SecretBytes};
use crate::store::Db;

/// Seals `secret` into a new connection of `vault_id` for `integration`. Needs no private key.
/// Returns the connection id.
pub async fn deposit(
    db: &Db,
    tenant: &Tenant,
    vault_id: &str,
    integration: &str,
    scopes: &str,
    secret: &SecretBytes,
) -> Result<String, Error> {
    if !ids::is_valid(Kind::Vault, vault_id) {
        return Err(Error::NotFound("vault"));
    }
    let connection_id = ids::new(Kind::Connection);
    let now = clock::now_ms();
    let mut tx = db.pool().begin().await?;
    // A write first: it locks the vault row, so a concurrent delete either precedes this
    // deposit (and we see the vault revoked) or waits for it (and revokes what we add).
    let recipient: Option<(String,)> = sqlx::query_as(
        "UPDATE vaults SET updated_at = updated_at WHERE id = $1 AND partner_id = $2 AND status = 'active'
         RETURNING recipient",
    )
    .bind(vault_id)
    .bind(tenant.partner_id())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((recipient,)) = recipient else {
        tx.rollback().await?;
        return Err(Error::NotFound("vault"));
    };
    let binding = Binding::credential(vault_id, &connection_id, integration, 1);
    let sealed = seal::seal(
        &parse_recipient(&recipient)?,
        &binding,
        secret.expose_secret(),
    )?;
    sqlx::query(
        "INSERT INTO connections (id, partner_id, vault_id, integration, status, sealed, seal_version, scopes,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'active', $5, 1, $6, $7, $7)",
    )
    .bind(&connection_id)
    .bind(tenant.partner_id())
    .bind(vault_id)
    .bind(integration)
    .bind(&sealed)
    .bind(scopes)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = NewEvent::lifecycle(tenant.actor(), "connection.created")
        .vault(vault_id)
        .connection(&connection_id)
        .integration(integration);
    audit::append(&mut tx, tenant.partner_id(), event).await?;
    tx.commit().await?;
    Ok(connection_id)
}

/// Opens the credential of an active connection. The injection path is the only caller.
pub async fn open(
    db: &Db,
    keys: &MasterKeyRing,
    tenant: &Tenant,
    connection_id: &str,
) -> Result<SecretBytes, Error> {
    if !ids::is_valid(Kind::Connection, connection_id) {
        return Err(Error::NotFound("connection"));
    }
    type Row = (
        String,
        String,
        String,
        Option<Vec<u8>>,
        i64,
        String,
        Option<Vec<u8>>,
        i64,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.vault_id, c.integration, c.status, c.sealed, c.seal_version,
                v.status, v.wrapped_key, v.master_key_version
         FROM connections c JOIN vaults v ON v.id = c.vault_id
         WHERE c.id = $1 AND c.partner_id = $2",
    )
    .bind(connection_id)
    .bind(tenant.partner_id())
    .fetch_optional(db.pool())
    .await?;
    let Some((
        vault_id,
        integration,
        status,
        sealed,
        seal_version,
        vault_status,
        wrapped,
        master_version,
    )) = row
    else {
        return Err(Error::NotFound("connection"));
    };
    if status == "revoked" || vault_status != "active" {
        return Err(Error::State("connection_revoked"));
    }
    let sealed = sealed.ok_or(Error::State("connection_revoked"))?;
    let vault_key = keys.open_vault_key(&vault_id, master_version, wrapped.as_deref())?;
    let binding = Binding::credential(&vault_id, connection_id, &integration, seal_version);
    Ok(seal::open(&vault_key, &binding, &sealed)?)
}
