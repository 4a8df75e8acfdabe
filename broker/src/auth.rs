//! Authentication and the tenant capability.
//!
//! An API key becomes a [`Principal`]; a principal that holds a scope yields a [`Tenant`]. Every
//! engine function that reads or changes a partner's objects takes a `&Tenant`, and a `Tenant`
//! can be made only here, so a handler that skipped the check does not compile.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::secret::{ExposeSecret, SecretString};
use crate::store::Db;

/// What a key may do. `admin` implies every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Admin,
    Vaults,
    Connect,
    Proxy,
    Audit,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Admin,
        Scope::Vaults,
        Scope::Connect,
        Scope::Proxy,
        Scope::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Vaults => "vaults",
            Scope::Connect => "connect",
            Scope::Proxy => "proxy",
            Scope::Audit => "audit",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Space-separated storage form.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn split(text: &str) -> Vec<Scope> {
        text.split_whitespace().filter_map(Scope::parse).collect()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was not authenticated or authorised.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key was presented")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error("the partner account is suspended")]
    Suspended,
    #[error("the API key lacks the {0} scope")]
    InsufficientScope(Scope),
    #[error("authentication could not be checked")]
    Store(#[from] sqlx::Error),
}

/// An authenticated API key.
#[derive(Debug, Clone)]
pub struct Principal {
    partner_id: String,
    key_id: String,
    scopes: Vec<Scope>,
}

impl Principal {
    pub fn partner_id(&self) -> &str {
        &self.partner_id
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// The tenant capability, if this key holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<Tenant, AuthError> {
        if !self.has(scope) {
            return Err(AuthError::InsufficientScope(scope));
        }
        Ok(Tenant {
            partner_id: self.partner_id.clone(),
            actor: self.key_id.clone(),
            scopes: self.scopes.clone(),
        })
    }
}

/// Proof that the caller may act on one partner's objects. Carries the actor for the audit log.
#[derive(Debug, Clone)]
pub struct Tenant {
    partner_id: String,
    actor: String,
    scopes: Vec<Scope>,
}

impl Tenant {
    pub fn partner_id(&self) -> &str {
        &self.partner_id
    }

    /// Who acts, for the audit log.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// The operator acting on a partner from the CLI. Only the CLI calls this.
    pub fn operator(partner_id: &str) -> Tenant {
        Tenant {
            partner_id: partner_id.to_owned(),
            actor: "operator".into(),
            scopes: vec![Scope::Admin],
        }
    }
}

/// The stored form of an API key: SHA-256 of the whole key. Keys are 256 random bits, so a
/// fast hash is enough; it lets the lookup be one indexed equality.
pub fn hash_key(key: &SecretString) -> String {
    hex::encode(Sha256::digest(key.expose_secret().as_bytes()))
}

/// Looks the key up; fails on an unknown or revoked key and on a suspended partner. Checked
/// against the store on every request, so a revocation or suspension holds at once.
pub async fn authenticate(db: &Db, key: &SecretString) -> Result<Principal, AuthError> {
    if !key.expose_secret().starts_with(crate::api_keys::KEY_PREFIX) {
        return Err(AuthError::Invalid);
    }
    let row: Option<(String, String, String, Option<i64>, String)> = sqlx::query_as(
        "SELECT k.id, k.partner_id, k.scopes, k.revoked_at, p.status
         FROM api_keys k JOIN partners p ON p.id = k.partner_id WHERE k.key_hash = $1",
    )
    .bind(hash_key(key))
    .fetch_optional(db.pool())
    .await?;
    let Some((key_id, partner_id, scopes, revoked_at, partner_status)) = row else {
        return Err(AuthError::Invalid);
    };
    if revoked_at.is_some() {
        return Err(AuthError::Invalid);
    }
    if partner_status != "active" {
        return Err(AuthError::Suspended);
    }
    Ok(Principal {
        partner_id,
        key_id,
        scopes: Scope::split(&scopes),
    })
}

impl From<AuthError> for Error {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Store(e) => Error::Store(e),
            other => Error::Internal(anyhow::anyhow!(other.to_string())),
        }
    }
}
