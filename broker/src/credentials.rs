//! The sealing seam: deposit a credential into a vault with its public key alone, open it on the
//! injection path, and replace it after a refresh. OAuth token sets and API keys both go
//! through here.

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::error::Error;
use crate::idempotency::{self, Idempotency};
use crate::ids::{self, Kind};
use crate::keys::master::parse_recipient;
use crate::keys::{Binding, MasterKeyRing, seal};
use crate::secret::{ExposeSecret, SecretBytes};
use crate::store::Db;
use sqlx::AnyConnection;

/// Where and how a new credential is stored.
#[derive(Debug, Clone)]
pub struct Deposit<'a> {
    pub vault_id: &'a str,
    pub integration: &'a str,
    /// Space-separated granted scopes.
    pub scopes: &'a str,
    /// When the credential stops working (epoch ms), when known.
    pub expires_at: Option<i64>,
    /// Who deposits, for the audit log.
    pub actor: &'a str,
}

/// Seals `secret` into a new connection of the tenant's vault. Needs no private key.
pub async fn deposit(
    db: &Db,
    tenant: &Tenant,
    deposit: Deposit<'_>,
    secret: &SecretBytes,
) -> Result<String, Error> {
    deposit_for_partner(db, tenant.partner_id(), deposit, secret).await
}

/// The connection a deposit stored, or the one an earlier request with the same
/// `Idempotency-Key` stored.
pub enum Deposited {
    New(String),
    Replayed(String),
}

/// Like [`deposit`], replaying the first result for a repeated `Idempotency-Key`. The key is
/// claimed in the transaction that stores the connection, so a retry after a lost answer (or
/// a crash after the commit) never stores the credential twice.
pub async fn deposit_once(
    db: &Db,
    tenant: &Tenant,
    deposit: Deposit<'_>,
    secret: &SecretBytes,
    idem: Option<&Idempotency>,
) -> Result<Deposited, Error> {
    store(db, tenant.partner_id(), deposit, secret, idem).await
}

/// Deposit on behalf of a partner whose authority was checked elsewhere (a connect session,
/// which is bound to one vault of one partner).
pub(crate) async fn deposit_for_partner(
    db: &Db,
    partner_id: &str,
    deposit: Deposit<'_>,
    secret: &SecretBytes,
) -> Result<String, Error> {
    match store(db, partner_id, deposit, secret, None).await? {
        Deposited::New(id) | Deposited::Replayed(id) => Ok(id),
    }
}

/// Like [`deposit_for_partner`], inside the caller's transaction, which must already have
/// written (see [`crate::store`]) and commits or rolls back the deposit with its own changes.
pub(crate) async fn deposit_in(
    tx: &mut AnyConnection,
    partner_id: &str,
    deposit: Deposit<'_>,
    secret: &SecretBytes,
) -> Result<String, Error> {
    match store_in(tx, partner_id, deposit, secret, None).await? {
        Deposited::New(id) | Deposited::Replayed(id) => Ok(id),
    }
}

async fn store(
    db: &Db,
    partner_id: &str,
    deposit: Deposit<'_>,
    secret: &SecretBytes,
    idem: Option<&Idempotency>,
) -> Result<Deposited, Error> {
    let mut tx = db.pool().begin().await?;
    // On an error the transaction is dropped, which rolls it back.
    let deposited = store_in(&mut tx, partner_id, deposit, secret, idem).await?;
    match deposited {
        Deposited::New(_) => tx.commit().await?,
        Deposited::Replayed(_) => tx.rollback().await?,
    }
    Ok(deposited)
}

/// Stores a deposit in `tx`. A replayed deposit and a missing vault write nothing.
async fn store_in(
    tx: &mut AnyConnection,
    partner_id: &str,
    deposit: Deposit<'_>,
    secret: &SecretBytes,
    idem: Option<&Idempotency>,
) -> Result<Deposited, Error> {
    if !ids::is_valid(Kind::Vault, deposit.vault_id) {
        return Err(Error::NotFound("vault"));
    }
    let connection_id = ids::new(Kind::Connection);
    let now = clock::now_ms();
    if let Some(idem) = idem
        && let Some(existing) = idempotency::claim(tx, partner_id, idem, &connection_id).await?
    {
        return Ok(Deposited::Replayed(existing));
    }
    // A write first: it locks the vault row, so a concurrent delete either precedes this
    // deposit (and we see the vault revoked) or waits for it (and revokes what we add).
    let recipient: Option<(String,)> = sqlx::query_as(
        "UPDATE vaults SET updated_at = updated_at WHERE id = $1 AND partner_id = $2 AND status = 'active'
         RETURNING recipient",
    )
    .bind(deposit.vault_id)
    .bind(partner_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((recipient,)) = recipient else {
        return Err(Error::NotFound("vault"));
    };
    let binding = Binding::credential(deposit.vault_id, &connection_id, deposit.integration, 1);
    let sealed = seal::seal(
        &parse_recipient(&recipient)?,
        &binding,
        secret.expose_secret(),
    )?;
    sqlx::query(
        "INSERT INTO connections (id, partner_id, vault_id, integration, status, sealed, seal_version, scopes,
             expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'active', $5, 1, $6, $7, $8, $8)",
    )
    .bind(&connection_id)
    .bind(partner_id)
    .bind(deposit.vault_id)
    .bind(deposit.integration)
    .bind(&sealed)
    .bind(deposit.scopes)
    .bind(deposit.expires_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = NewEvent::lifecycle(deposit.actor, "connection.created")
        .vault(deposit.vault_id)
        .connection(&connection_id)
        .integration(deposit.integration);
    audit::append(tx, partner_id, event).await?;
    Ok(Deposited::New(connection_id))
}

/// An opened credential and the row facts it was opened under.
pub struct Opened {
    pub secret: SecretBytes,
    pub vault_id: String,
    pub integration: String,
    /// Which sealed version this is; a refresh writes `seal_version + 1`.
    pub seal_version: i64,
    pub expires_at: Option<i64>,
    /// When the sealed value last changed (epoch ms).
    pub updated_at: i64,
    /// The vault's public recipient, to seal a replacement without another read.
    pub recipient: String,
}

/// Opens the credential of an active connection. Checked against the store on every call, so
/// a revoked connection or vault never opens.
pub async fn open(
    db: &Db,
    keys: &MasterKeyRing,
    tenant: &Tenant,
    connection_id: &str,
) -> Result<Opened, Error> {
    open_for_partner(db, keys, tenant.partner_id(), connection_id).await
}

#[derive(sqlx::FromRow)]
struct OpenRow {
    vault_id: String,
    integration: String,
    status: String,
    sealed: Option<Vec<u8>>,
    seal_version: i64,
    expires_at: Option<i64>,
    updated_at: i64,
    vault_status: String,
    wrapped_key: Option<Vec<u8>>,
    master_key_version: i64,
    recipient: String,
}

pub(crate) async fn open_for_partner(
    db: &Db,
    keys: &MasterKeyRing,
    partner_id: &str,
    connection_id: &str,
) -> Result<Opened, Error> {
    if !ids::is_valid(Kind::Connection, connection_id) {
        return Err(Error::NotFound("connection"));
    }
    let row: Option<OpenRow> = sqlx::query_as(
        "SELECT c.vault_id, c.integration, c.status, c.sealed, c.seal_version, c.expires_at, c.updated_at,
                v.status AS vault_status, v.wrapped_key, v.master_key_version, v.recipient
         FROM connections c JOIN vaults v ON v.id = c.vault_id
         WHERE c.id = $1 AND c.partner_id = $2",
    )
    .bind(connection_id)
    .bind(partner_id)
    .fetch_optional(db.pool())
    .await?;
    let row = row.ok_or(Error::NotFound("connection"))?;
    match row.status.as_str() {
        "active" if row.vault_status == "active" => {}
        "reauth_required" if row.vault_status == "active" => {
            return Err(Error::State("reauth_required"));
        }
        _ => return Err(Error::State("connection_revoked")),
    }
    let sealed = row.sealed.ok_or(Error::State("connection_revoked"))?;
    let vault_key = keys.open_vault_key(
        &row.vault_id,
        row.master_key_version,
        row.wrapped_key.as_deref(),
    )?;
    let binding = Binding::credential(
        &row.vault_id,
        connection_id,
        &row.integration,
        row.seal_version,
    );
    let secret = seal::open(&vault_key, &binding, &sealed)?;
    Ok(Opened {
        secret,
        vault_id: row.vault_id,
        integration: row.integration,
        seal_version: row.seal_version,
        expires_at: row.expires_at,
        updated_at: row.updated_at,
        recipient: row.recipient,
    })
}

/// Replaces the credential of an active connection with `secret`, sealed as version
/// `previous_version + 1`, only if the row still holds `previous_version`. Returns false when
/// another writer got there first. Runs inside the caller's transaction.
pub(crate) async fn replace(
    conn: &mut sqlx::AnyConnection,
    connection_id: &str,
    opened: &Opened,
    secret: &SecretBytes,
    expires_at: Option<i64>,
    scopes: Option<&str>,
) -> Result<bool, Error> {
    let version = opened.seal_version + 1;
    let binding = Binding::credential(
        &opened.vault_id,
        connection_id,
        &opened.integration,
        version,
    );
    let sealed = seal::seal(
        &parse_recipient(&opened.recipient)?,
        &binding,
        secret.expose_secret(),
    )?;
    // The transaction's first statement, and a write (see store::mod): SQLite takes its write
    // lock here instead of failing an upgrade later.
    let updated = sqlx::query(
        "UPDATE connections SET sealed = $1, seal_version = $2, expires_at = $3, scopes = COALESCE($4, scopes),
             updated_at = $5
         WHERE id = $6 AND seal_version = $7 AND status = 'active'",
    )
    .bind(&sealed)
    .bind(version)
    .bind(expires_at)
    .bind(scopes)
    .bind(clock::now_ms())
    .bind(connection_id)
    .bind(opened.seal_version)
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}
