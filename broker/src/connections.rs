//! Connections: a vault's credential for one integration. Listed and read as metadata only;
//! deleted locally at once and revoked at the provider (RFC 7009) on a best-effort basis.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::credentials;
use crate::error::Error;
use crate::idempotency::Idempotency;
use crate::ids::{self, Kind};
use crate::integrations::{self, AuthType, Integration};
use crate::keys::{Binding, MasterKeyRing, seal};
use crate::oauth::endpoint::{self, Revocation};
use crate::oauth::token_response::TokenSet;
use crate::pagination::{Page, PageRequest};
use crate::secret::{ExposeSecret, SecretString};
use crate::store::Db;

/// A connection's metadata. Never a value.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Connection {
    pub id: String,
    pub vault_id: String,
    pub integration: String,
    pub status: String,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub upstream_revocation: Option<String>,
}

const COLUMNS: &str = "id, vault_id, integration, status, scopes, expires_at, created_at, last_used_at, upstream_revocation";

/// What revocation needs besides the store.
pub struct RevokeContext<'a> {
    /// This replica's membership: revocations wait on it for every replica's requests.
    pub fleet: &'a Arc<crate::fleet::Fleet>,
    pub db: &'a Db,
    /// The ring as it was when the request began.
    pub keys: Arc<MasterKeyRing>,
    pub http: &'a reqwest::Client,
    pub allow_private: bool,
}

/// The connections of one of the tenant's vaults.
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    vault_id: &str,
    page: &PageRequest,
) -> Result<Page<Connection>, Error> {
    crate::vaults::get(db, tenant, vault_id).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM connections WHERE partner_id = $1 AND vault_id = $2 AND id > $3 ORDER BY id LIMIT $4"
    );
    let rows: Vec<Connection> = sqlx::query_as(&sql)
        .bind(tenant.partner_id())
        .bind(vault_id)
        .bind(&page.after)
        .bind(page.fetch())
        .fetch_all(db.pool())
        .await?;
    Ok(Page::from_rows(rows, page, |c| &c.id))
}

/// One connection of one of the tenant's vaults.
pub async fn get(
    db: &Db,
    tenant: &Tenant,
    vault_id: &str,
    connection_id: &str,
) -> Result<Connection, Error> {
    if !ids::is_valid(Kind::Connection, connection_id) {
        return Err(Error::NotFound("connection"));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM connections WHERE id = $1 AND vault_id = $2 AND partner_id = $3"
    );
    sqlx::query_as(&sql)
        .bind(connection_id)
        .bind(vault_id)
        .bind(tenant.partner_id())
        .fetch_optional(db.pool())
        .await?
        .ok_or(Error::NotFound("connection"))
}

/// Checks a pasted or deposited API key: 1 to 4096 visible ASCII characters, so it can travel in
/// a header or query parameter without being able to add another one.
pub fn validate_api_key(key: &SecretString) -> Result<(), Error> {
    let text = key.expose_secret();
    if text.is_empty() || text.len() > 4096 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "api_key",
            "must be 1 to 4096 visible ASCII characters",
        ));
    }
    Ok(())
}

/// Deposits an API key into one of the tenant's vaults for an `api_key` integration. The key is
/// sealed to the vault's public key and never returned.
pub async fn deposit_api_key(
    db: &Db,
    keys: &MasterKeyRing,
    tenant: &Tenant,
    vault_id: &str,
    integration_key: &str,
    api_key: &SecretString,
    idempotency_key: Option<&str>,
) -> Result<Deposited, Error> {
    crate::vaults::get(db, tenant, vault_id).await?;
    let integration = integrations::named_in_body(db, tenant, integration_key).await?;
    if integration.auth_type != AuthType::ApiKey {
        return Err(Error::invalid(
            "integration",
            "is an OAuth integration; connect it with a connect session",
        ));
    }
    validate_api_key(api_key)?;
    let deposit = credentials::Deposit {
        vault_id,
        integration: integration_key,
        scopes: "",
        expires_at: None,
        actor: tenant.actor(),
    };
    let secret = crate::secret::secret_bytes(api_key.expose_secret().as_bytes().to_vec());
    let idem = idempotency_key
        .map(|key| deposit_fingerprint(keys, key, vault_id, integration_key, api_key))
        .transpose()?;
    Ok(
        match credentials::deposit_once(db, tenant, deposit, &secret, idem.as_ref()).await? {
            credentials::Deposited::New(id) => {
                Deposited::New(get(db, tenant, vault_id, &id).await?)
            }
            credentials::Deposited::Replayed(id) => {
                Deposited::Replayed(get(db, tenant, vault_id, &id).await?)
            }
        },
    )
}

/// A deposit's connection, new or replayed for a repeated `Idempotency-Key`.
pub enum Deposited {
    New(Connection),
    Replayed(Connection),
}

/// The idempotency fingerprint of a deposit. The key itself is not stored, not even as a
/// hash that a guess could be checked against: it enters the fingerprint as an HMAC under a key
/// derived from the master key ([`MasterKeyRing::keyed_digest`]), which a copy of the database
/// does not hold. A retry that straddles a master-key rotation therefore no longer matches and
/// is refused as a reuse of the key with a different request.
fn deposit_fingerprint(
    keys: &MasterKeyRing,
    idempotency_key: &str,
    vault_id: &str,
    integration_key: &str,
    api_key: &SecretString,
) -> Result<Idempotency, Error> {
    let request = serde_json::json!({
        "vault_id": vault_id,
        "integration": integration_key,
        "api_key": keys.keyed_digest("deposit idempotency", api_key.expose_secret().as_bytes()),
    });
    Idempotency::new(idempotency_key, "connections.deposit", &request)
}

/// A credential held in memory between local destruction and upstream revocation.
pub struct Held {
    pub connection_id: String,
    pub vault_id: String,
    pub integration: Integration,
    pub tokens: TokenSet,
}

/// A revoked connection's ciphertext and its vault key, read inside the revoking transaction
/// (after its first write has locked the row, so no refresh can slip a newer token set in
/// between) and opened after the commit.
pub struct Captured {
    pub connection_id: String,
    pub vault_id: String,
    pub integration: String,
    pub sealed: Option<Vec<u8>>,
    pub seal_version: i64,
    pub wrapped_key: Option<Vec<u8>>,
    pub master_key_version: i64,
}

/// Opens a captured OAuth token set. `None` for API-key connections and anything unreadable:
/// there is nothing to revoke upstream then.
pub async fn open_captured(
    ctx: &RevokeContext<'_>,
    partner_id: &str,
    captured: Captured,
) -> Result<Option<Held>, Error> {
    let Some(integration) = integrations::find(ctx.db, partner_id, &captured.integration).await?
    else {
        return Ok(None);
    };
    let Some(sealed) = captured
        .sealed
        .filter(|_| integration.auth_type == AuthType::Oauth2)
    else {
        return Ok(None);
    };
    let Ok(vault_key) = ctx.keys.open_vault_key(
        &captured.vault_id,
        captured.master_key_version,
        captured.wrapped_key.as_deref(),
    ) else {
        return Ok(None);
    };
    let binding = Binding::credential(
        &captured.vault_id,
        &captured.connection_id,
        &captured.integration,
        captured.seal_version,
    );
    let Ok(secret) = seal::open(&vault_key, &binding, &sealed) else {
        return Ok(None);
    };
    let Ok(tokens) = TokenSet::from_sealed_bytes(secret.expose_secret()) else {
        return Ok(None);
    };
    Ok(Some(Held {
        connection_id: captured.connection_id,
        vault_id: captured.vault_id,
        integration,
        tokens,
    }))
}

/// The result of deleting a connection.
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    pub id: String,
    pub upstream_revocation: &'static str,
}

/// Revokes a connection: status and ciphertext change in one transaction (no request started
/// after this returns can use it, and requests of this process still using it are waited for),
/// then the provider is asked to revoke the tokens.
pub async fn delete(
    ctx: &RevokeContext<'_>,
    tenant: &Tenant,
    vault_id: &str,
    connection_id: &str,
) -> Result<Revoked, Error> {
    let existing = get(ctx.db, tenant, vault_id, connection_id).await?;
    let now = clock::now_ms();
    let mut tx = ctx.db.pool().begin().await?;
    let revoked: Option<(Option<Vec<u8>>, i64)> = sqlx::query_as(
        "UPDATE connections SET status = 'revoked', revoked_at = $1, updated_at = $1
         WHERE id = $2 AND vault_id = $3 AND partner_id = $4 AND status <> 'revoked'
         RETURNING sealed, seal_version",
    )
    .bind(now)
    .bind(connection_id)
    .bind(vault_id)
    .bind(tenant.partner_id())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((sealed, seal_version)) = revoked else {
        tx.rollback().await?;
        let outcome = match existing.upstream_revocation.as_deref() {
            Some("revoked") => "revoked",
            Some("not_supported") => "not_supported",
            _ => "failed",
        };
        return Ok(Revoked {
            id: existing.id,
            upstream_revocation: outcome,
        });
    };
    sqlx::query("UPDATE connections SET sealed = NULL WHERE id = $1")
        .bind(connection_id)
        .execute(&mut *tx)
        .await?;
    let (wrapped_key, master_key_version): (Option<Vec<u8>>, i64) =
        sqlx::query_as("SELECT wrapped_key, master_key_version FROM vaults WHERE id = $1")
            .bind(vault_id)
            .fetch_one(&mut *tx)
            .await?;
    let event = NewEvent::lifecycle(tenant.actor(), "connection.revoked")
        .vault(vault_id)
        .connection(connection_id)
        .integration(&existing.integration);
    audit::append(&mut tx, tenant.partner_id(), event).await?;
    let revision = crate::fleet::bump(&mut tx, &[connection_id]).await?;
    tx.commit().await?;
    ctx.fleet.settle(revision, &[connection_id]).await;
    ctx.db.flush_destroyed().await;
    let captured = Captured {
        connection_id: connection_id.to_owned(),
        vault_id: vault_id.to_owned(),
        integration: existing.integration.clone(),
        sealed,
        seal_version,
        wrapped_key,
        master_key_version,
    };
    let outcome = match open_captured(ctx, tenant.partner_id(), captured).await? {
        Some(held) => revoke_upstream(ctx, tenant.actor(), held).await?,
        None => Revocation::NotSupported,
    };
    Ok(Revoked {
        id: existing.id,
        upstream_revocation: outcome.as_str(),
    })
}

/// Asks the provider to revoke a held token set (refresh token first: with most providers it
/// ends the whole grant), records and audits the outcome, and keeps retrying transient
/// failures in the background for a few minutes. The retries live in this process only.
pub async fn revoke_upstream(
    ctx: &RevokeContext<'_>,
    actor: &str,
    held: Held,
) -> Result<Revocation, Error> {
    let outcome = attempt(ctx, &held).await;
    record(ctx.db, actor, &held, outcome).await?;
    if let Revocation::Failed { retry: true } = outcome {
        let (fleet, db, keys, http, allow_private) = (
            ctx.fleet.clone(),
            ctx.db.clone(),
            ctx.keys.clone(),
            ctx.http.clone(),
            ctx.allow_private,
        );
        tokio::spawn(async move {
            let ctx = RevokeContext {
                fleet: &fleet,
                db: &db,
                keys,
                http: &http,
                allow_private,
            };
            for delay in [5u64, 30, 120] {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                let outcome = attempt(&ctx, &held).await;
                if !matches!(outcome, Revocation::Failed { retry: true }) {
                    let _ = record(&db, "system", &held, outcome).await;
                    return;
                }
            }
        });
    }
    Ok(outcome)
}

async fn attempt(ctx: &RevokeContext<'_>, held: &Held) -> Revocation {
    let Some(settings) = held.integration.oauth.as_ref() else {
        return Revocation::NotSupported;
    };
    if settings.revocation_url.is_none() {
        return Revocation::NotSupported;
    }
    let Ok(secret) = integrations::client_secret(ctx.db, &ctx.keys, &held.integration).await else {
        return Revocation::Failed { retry: false };
    };
    let mut outcome = Revocation::Revoked;
    let tokens = [
        (held.tokens.refresh_token.as_ref(), "refresh_token"),
        (Some(&held.tokens.access_token), "access_token"),
    ];
    for (token, hint) in tokens {
        if let Some(token) = token {
            let result =
                endpoint::revoke(ctx.http, settings, &secret, token, hint, ctx.allow_private).await;
            if result != Revocation::Revoked {
                outcome = result;
            }
        }
    }
    outcome
}

async fn record(db: &Db, actor: &str, held: &Held, outcome: Revocation) -> Result<(), Error> {
    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE connections SET upstream_revocation = $1 WHERE id = $2")
        .bind(outcome.as_str())
        .bind(&held.connection_id)
        .execute(&mut *tx)
        .await?;
    let mut event = NewEvent::lifecycle(actor, "connection.upstream_revocation")
        .vault(&held.vault_id)
        .connection(&held.connection_id)
        .integration(&held.integration.key)
        .reason(outcome.as_str());
    if outcome != Revocation::Revoked {
        event.outcome = "failure";
    }
    audit::append(&mut tx, &held.integration.partner_id, event).await?;
    tx.commit().await?;
    Ok(())
}
