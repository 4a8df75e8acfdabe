//! Integrations: how a partner connects to one provider — OAuth endpoints and client, the API
//! base URL and host allowlist, and how a credential is injected. Built from a catalog
//! template, a `custom` definition, or OpenID / RFC 8414 discovery from an issuer. The client
//! secret is sealed to the master key and never returned.

use serde::{Deserialize, Serialize};

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::error::Error;
use crate::keys::{Binding, MasterKeyRing};
use crate::net;
use crate::oauth::catalog::{self, ClientAuth};
use crate::oauth::discovery;
use crate::secret::{ExposeSecret, SecretString};
use crate::store::{self, Db};

/// `oauth2` (tokens from a consent flow) or `api_key` (a key deposited as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    Oauth2,
    ApiKey,
}

/// How the proxy puts the credential on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum Inject {
    Bearer,
    Basic,
    Header { name: String },
    Query { name: String },
}

/// Resolved OAuth settings of an integration. No secret in here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthSettings {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub issuer: Option<String>,
    /// Whether the provider puts RFC 9207 `iss` on every authorization response; then a
    /// response without it is refused.
    pub iss_parameter_supported: bool,
    pub scope_separator: String,
    /// The authorization request parameter that carries the scopes (`scope`; Slack user
    /// tokens use `user_scope`).
    #[serde(default = "default_scope_param")]
    pub scope_param: String,
    pub pkce: bool,
    pub token_auth: ClientAuth,
    pub token_path: Option<String>,
    pub extra_authorize_params: Vec<(String, String)>,
}

fn default_scope_param() -> String {
    "scope".into()
}

/// A stored integration.
#[derive(Debug, Clone)]
pub struct Integration {
    pub partner_id: String,
    pub key: String,
    pub provider: String,
    pub auth_type: AuthType,
    pub oauth: Option<OAuthSettings>,
    pub api_base_url: String,
    pub allowed_hosts: Vec<String>,
    /// Whether the proxy follows the upstream's redirects (see [`crate::redirects`]).
    pub follow_redirects: bool,
    pub inject: Inject,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a partner sends to create an integration; omitted fields come from the template.
#[derive(Debug, Default)]
pub struct NewIntegration {
    pub key: String,
    pub provider: String,
    pub auth_type: Option<AuthType>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub scopes: Option<Vec<String>>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub revocation_url: Option<String>,
    pub issuer: Option<String>,
    pub scope_separator: Option<String>,
    pub pkce: Option<bool>,
    pub token_auth: Option<ClientAuth>,
    pub token_path: Option<String>,
    pub api_base_url: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub follow_redirects: Option<bool>,
    pub inject: Option<Inject>,
}

#[derive(sqlx::FromRow)]
struct Row {
    partner_id: String,
    integration_key: String,
    provider: String,
    auth_type: String,
    oauth: String,
    api_base_url: String,
    allowed_hosts: String,
    follow_redirects: i64,
    inject: String,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "partner_id, integration_key, provider, auth_type, oauth, api_base_url, allowed_hosts, follow_redirects, inject, created_at, updated_at";

impl TryFrom<Row> for Integration {
    type Error = Error;
    fn try_from(row: Row) -> Result<Self, Error> {
        let corrupt = |e: serde_json::Error| {
            Error::Internal(anyhow::Error::new(e).context("stored integration"))
        };
        Ok(Integration {
            auth_type: if row.auth_type == "oauth2" {
                AuthType::Oauth2
            } else {
                AuthType::ApiKey
            },
            oauth: serde_json::from_str(&row.oauth).map_err(corrupt)?,
            allowed_hosts: serde_json::from_str(&row.allowed_hosts).map_err(corrupt)?,
            inject: serde_json::from_str(&row.inject).map_err(corrupt)?,
            follow_redirects: row.follow_redirects != 0,
            partner_id: row.partner_id,
            key: row.integration_key,
            provider: row.provider,
            api_base_url: row.api_base_url,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The exact callback URL to register at the provider. One per integration, so a callback
/// always names the integration its flow was started for (a mix-up defence).
pub fn redirect_uri(public_url: &str, partner_id: &str, key: &str) -> String {
    format!(
        "{}/oauth/callback/{partner_id}/{key}",
        public_url.trim_end_matches('/')
    )
}

/// Creates an integration.
pub async fn create(
    db: &Db,
    keys: &MasterKeyRing,
    http: &reqwest::Client,
    tenant: &Tenant,
    input: NewIntegration,
    allow_private: bool,
) -> Result<Integration, Error> {
    validate_key(&input.key)?;
    let (integration, secret) = resolve(http, tenant.partner_id(), input, allow_private).await?;
    let sealed = match &secret {
        Some(secret) => {
            let binding = |v| {
                Binding::partner_secret("client_secret", tenant.partner_id(), &integration.key, v)
            };
            Some(keys.seal_to_master(binding, secret.expose_secret().as_bytes())?)
        }
        None => None,
    };
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO integrations (partner_id, integration_key, provider, auth_type, oauth, client_secret_sealed,
             master_key_version, api_base_url, allowed_hosts, inject, created_at, updated_at, follow_redirects)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
    )
    .bind(tenant.partner_id())
    .bind(&integration.key)
    .bind(&integration.provider)
    .bind(if integration.auth_type == AuthType::Oauth2 { "oauth2" } else { "api_key" })
    .bind(json(&integration.oauth))
    .bind(sealed.as_ref().map(|(blob, _)| blob.clone()))
    .bind(sealed.as_ref().map(|(_, version)| *version))
    .bind(&integration.api_base_url)
    .bind(json(&integration.allowed_hosts))
    .bind(json(&integration.inject))
    .bind(integration.created_at)
    .bind(i64::from(integration.follow_redirects))
    .execute(&mut *tx)
    .await;
    if let Err(err) = inserted {
        tx.rollback().await?;
        if store::is_unique_violation(&err) {
            return Err(Error::Conflict {
                what: "integration with this key",
                existing_id: Some(integration.key),
            });
        }
        return Err(err.into());
    }
    let event =
        NewEvent::lifecycle(tenant.actor(), "integration.created").integration(&integration.key);
    audit::append(&mut tx, tenant.partner_id(), event).await?;
    tx.commit().await?;
    Ok(integration)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("integration settings serialise")
}

fn validate_key(key: &str) -> Result<(), Error> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "key",
            "must be 1 to 64 of a-z 0-9 - _, starting with a letter or digit",
        ))
    }
}

/// Fills the input from the template or discovery and checks every rule.
async fn resolve(
    http: &reqwest::Client,
    partner_id: &str,
    input: NewIntegration,
    allow_private: bool,
) -> Result<(Integration, Option<SecretString>), Error> {
    let template = match input.provider.as_str() {
        "custom" => None,
        key => Some(catalog::get(key).ok_or_else(|| {
            Error::invalid("provider", "is not in GET /v1/providers; use custom")
        })?),
    };
    let auth_type = input.auth_type.unwrap_or(AuthType::Oauth2);
    let (oauth, secret) = match auth_type {
        AuthType::ApiKey => (None, None),
        AuthType::Oauth2 => {
            let secret = input
                .client_secret
                .clone()
                .filter(|s| !s.expose_secret().is_empty())
                .ok_or_else(|| Error::invalid("auth.client_secret", "is required for oauth2"))?;
            (
                Some(resolve_oauth(http, &input, template, allow_private).await?),
                Some(secret),
            )
        }
    };
    let api_base_url = input
        .api_base_url
        .clone()
        .or_else(|| template.map(|t| t.api_base_url.to_owned()))
        .ok_or_else(|| Error::invalid("api.base_url", "is required for custom providers"))?;
    let allowed_hosts = input
        .allowed_hosts
        .clone()
        .or_else(|| template.map(|t| t.allowed_hosts.iter().map(|h| (*h).to_owned()).collect()))
        .unwrap_or_default();
    check_api(&api_base_url, &allowed_hosts, allow_private)?;
    check_template_hosts(&input.provider, &allowed_hosts)?;
    let inject = input.inject.clone().unwrap_or(Inject::Bearer);
    if let Inject::Header { name } | Inject::Query { name } = &inject {
        crate::validate::identifier("inject.name", name, 64)?;
    }
    let now = clock::now_ms();
    let integration = Integration {
        partner_id: partner_id.to_owned(),
        key: input.key,
        provider: input.provider,
        auth_type,
        oauth,
        api_base_url,
        allowed_hosts,
        follow_redirects: input.follow_redirects.unwrap_or(false),
        inject,
        created_at: now,
        updated_at: now,
    };
    Ok((integration, secret))
}

async fn resolve_oauth(
    http: &reqwest::Client,
    input: &NewIntegration,
    template: Option<&'static catalog::ProviderTemplate>,
    allow_private: bool,
) -> Result<OAuthSettings, Error> {
    let client_id = input.client_id.clone().filter(|c| !c.is_empty());
    let client_id =
        client_id.ok_or_else(|| Error::invalid("auth.client_id", "is required for oauth2"))?;
    let issuer = input
        .issuer
        .clone()
        .or_else(|| template.and_then(|t| t.issuer.map(str::to_owned)));
    let discovered = match (&issuer, &input.authorization_url, template) {
        (Some(issuer), None, None) => Some(discovery::discover(http, issuer, allow_private).await?),
        _ => None,
    };
    let pick = |given: &Option<String>, found: Option<String>, from_template: Option<&str>| {
        given
            .clone()
            .or(found)
            .or_else(|| from_template.map(str::to_owned))
    };
    let authorization_url = pick(
        &input.authorization_url,
        discovered
            .as_ref()
            .map(|d| d.authorization_endpoint.clone()),
        template.map(|t| t.authorization_url),
    )
    .ok_or_else(|| {
        Error::invalid(
            "auth.authorization_url",
            "is required for custom providers without an issuer",
        )
    })?;
    let token_url = pick(
        &input.token_url,
        discovered.as_ref().map(|d| d.token_endpoint.clone()),
        template.map(|t| t.token_url),
    )
    .ok_or_else(|| {
        Error::invalid(
            "auth.token_url",
            "is required for custom providers without an issuer",
        )
    })?;
    let revocation_url = pick(
        &input.revocation_url,
        discovered
            .as_ref()
            .and_then(|d| d.revocation_endpoint.clone()),
        template.and_then(|t| t.revocation_url),
    );
    for (field, url) in [
        ("auth.authorization_url", Some(&authorization_url)),
        ("auth.token_url", Some(&token_url)),
        ("auth.revocation_url", revocation_url.as_ref()),
    ] {
        if let Some(url) = url {
            net::vet(url, allow_private).map_err(|e| Error::invalid(field, e.to_string()))?;
        }
    }
    let scopes = input
        .scopes
        .clone()
        .or_else(|| template.map(|t| t.default_scopes.iter().map(|s| (*s).to_owned()).collect()))
        .unwrap_or_default();
    if scopes.iter().any(|s| {
        s.is_empty() || s.len() > 200 || s.chars().any(|c| c.is_whitespace() || c.is_control())
    }) {
        return Err(Error::invalid(
            "auth.scopes",
            "must be non-empty strings without spaces",
        ));
    }
    Ok(OAuthSettings {
        client_id,
        scopes,
        authorization_url,
        token_url,
        revocation_url,
        iss_parameter_supported: discovered
            .as_ref()
            .is_some_and(|d| d.iss_parameter_supported),
        issuer: discovered.as_ref().map(|d| d.issuer.clone()).or(issuer),
        scope_separator: input
            .scope_separator
            .clone()
            .or_else(|| template.map(|t| t.scope_separator.to_owned()))
            .unwrap_or_else(|| " ".into()),
        scope_param: template
            .map(|t| t.scope_param.to_owned())
            .unwrap_or_else(default_scope_param),
        pkce: input
            .pkce
            .or_else(|| discovered.as_ref().map(|d| d.pkce_s256))
            .or_else(|| template.map(|t| t.pkce))
            .unwrap_or(true),
        token_auth: input
            .token_auth
            .or_else(|| discovered.as_ref().map(|d| d.client_auth))
            .or_else(|| template.map(|t| t.client_auth))
            .unwrap_or(ClientAuth::ClientSecretBasic),
        token_path: input
            .token_path
            .clone()
            .or_else(|| template.and_then(|t| t.token_path.map(str::to_owned))),
        extra_authorize_params: template
            .map(|t| {
                t.extra_authorize_params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// A catalog provider's tokens go only to that provider's own API hosts: every allowlist entry
/// must be one of the template's entries or a host a template wildcard covers.
fn check_template_hosts(provider: &str, allowed_hosts: &[String]) -> Result<(), Error> {
    let Some(template) = catalog::get(provider) else {
        return Ok(());
    };
    let outside = allowed_hosts.iter().any(|entry| {
        !template.allowed_hosts.contains(&entry.as_str())
            && (entry.starts_with("*.") || !template.allows_host(entry))
    });
    if outside {
        return Err(Error::invalid(
            "api.allowed_hosts",
            "may only name the provider's own API hosts (see GET /v1/providers)",
        ));
    }
    Ok(())
}

async fn has_live_connections(db: &Db, partner_id: &str, key: &str) -> Result<bool, Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM connections WHERE partner_id = $1 AND integration = $2 AND status <> 'revoked' LIMIT 1",
    )
    .bind(partner_id)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

/// The API base URL must be vetted and its host on the allowlist.
fn check_api(base_url: &str, allowed_hosts: &[String], allow_private: bool) -> Result<(), Error> {
    let url = net::vet(base_url, allow_private)
        .map_err(|e| Error::invalid("api.base_url", e.to_string()))?;
    if allowed_hosts.is_empty() {
        return Err(Error::invalid(
            "api.allowed_hosts",
            "must name at least one host",
        ));
    }
    for host in allowed_hosts {
        let name = host.strip_prefix("*.").unwrap_or(host);
        let valid = !name.is_empty()
            && name.contains('.') | allow_private
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !valid {
            return Err(Error::invalid(
                "api.allowed_hosts",
                "entries are lower-case host names or *.domain",
            ));
        }
    }
    let host = url.host_str().unwrap_or_default();
    if !host_allowed(host, allowed_hosts) {
        return Err(Error::invalid(
            "api.base_url",
            "its host is not in api.allowed_hosts",
        ));
    }
    Ok(())
}

/// Exact match, or `*.domain` matching a strict subdomain (never the apex or a look-alike).
pub fn host_allowed(host: &str, allowed_hosts: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    allowed_hosts
        .iter()
        .any(|entry| match entry.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            None => host == *entry,
        })
}

/// One of the tenant's integrations.
pub async fn get(db: &Db, tenant: &Tenant, key: &str) -> Result<Integration, Error> {
    find(db, tenant.partner_id(), key)
        .await?
        .ok_or(Error::NotFound("integration"))
}

/// Looks an integration up by partner id (the OAuth callback knows no tenant yet).
pub async fn find(db: &Db, partner_id: &str, key: &str) -> Result<Option<Integration>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integrations WHERE partner_id = $1 AND integration_key = $2"
    );
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(partner_id)
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
    row.map(Integration::try_from).transpose()
}

/// Every integration of the tenant, by key.
pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<Integration>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integrations WHERE partner_id = $1 ORDER BY integration_key"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(tenant.partner_id())
        .fetch_all(db.pool())
        .await?;
    rows.into_iter().map(Integration::try_from).collect()
}

/// Opens the client secret of an integration.
pub async fn client_secret(
    db: &Db,
    keys: &MasterKeyRing,
    integration: &Integration,
) -> Result<SecretString, Error> {
    let (blob, version): (Option<Vec<u8>>, Option<i64>) = sqlx::query_as(
        "SELECT client_secret_sealed, master_key_version FROM integrations WHERE partner_id = $1 AND integration_key = $2",
    )
    .bind(&integration.partner_id)
    .bind(&integration.key)
    .fetch_one(db.pool())
    .await?;
    let (Some(blob), Some(version)) = (blob, version) else {
        return Err(Error::State("integration_has_no_client_secret"));
    };
    let binding = Binding::partner_secret(
        "client_secret",
        &integration.partner_id,
        &integration.key,
        version,
    );
    let bytes = keys.open_from_master(version, &binding, &blob)?;
    let text = std::str::from_utf8(bytes.expose_secret())
        .map_err(|_| Error::Internal(anyhow::anyhow!("client secret is not UTF-8")))?;
    Ok(SecretString::from(text.to_owned()))
}

/// What `PATCH` may change: the client, the scopes, the API target, whether redirects are
/// followed, and the injection style.
/// Endpoints and the provider are fixed once created (a new integration is a new key).
#[derive(Debug, Default)]
pub struct Changes {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub scopes: Option<Vec<String>>,
    pub api_base_url: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    /// Turning this on or off moves no target (every hop stays on the allowlist and the
    /// credential on the first origin), so it may change while connections are live.
    pub follow_redirects: Option<bool>,
    pub inject: Option<Inject>,
}

/// Applies `changes` to one of the tenant's integrations.
pub async fn update(
    db: &Db,
    keys: &MasterKeyRing,
    tenant: &Tenant,
    key: &str,
    changes: Changes,
    allow_private: bool,
) -> Result<Integration, Error> {
    let mut integration = get(db, tenant, key).await?;
    if let Some(oauth) = integration.oauth.as_mut() {
        if let Some(client_id) = changes.client_id.filter(|c| !c.is_empty()) {
            oauth.client_id = client_id;
        }
        if let Some(scopes) = changes.scopes {
            if scopes
                .iter()
                .any(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(Error::invalid(
                    "auth.scopes",
                    "must be non-empty strings without spaces",
                ));
            }
            oauth.scopes = scopes;
        }
    } else if changes.client_id.is_some()
        || changes.client_secret.is_some()
        || changes.scopes.is_some()
    {
        return Err(Error::invalid(
            "auth",
            "an api_key integration has no OAuth client",
        ));
    }
    let moves_target = changes.api_base_url.is_some() || changes.allowed_hosts.is_some();
    if moves_target && has_live_connections(db, tenant.partner_id(), key).await? {
        return Err(Error::State("integration_in_use"));
    }
    if let Some(Inject::Header { name } | Inject::Query { name }) = &changes.inject {
        crate::validate::identifier("inject.name", name, 64)?;
    }
    if let Some(base) = changes.api_base_url {
        integration.api_base_url = base;
    }
    if let Some(hosts) = changes.allowed_hosts {
        integration.allowed_hosts = hosts;
    }
    if let Some(follow) = changes.follow_redirects {
        integration.follow_redirects = follow;
    }
    if let Some(inject) = changes.inject {
        integration.inject = inject;
    }
    check_api(
        &integration.api_base_url,
        &integration.allowed_hosts,
        allow_private,
    )?;
    check_template_hosts(&integration.provider, &integration.allowed_hosts)?;
    let sealed = match changes
        .client_secret
        .filter(|s| !s.expose_secret().is_empty())
    {
        Some(secret) => {
            let binding = |v| Binding::partner_secret("client_secret", tenant.partner_id(), key, v);
            Some(keys.seal_to_master(binding, secret.expose_secret().as_bytes())?)
        }
        None => None,
    };
    integration.updated_at = clock::now_ms();
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "UPDATE integrations SET oauth = $1, api_base_url = $2, allowed_hosts = $3, inject = $4, updated_at = $5,
             client_secret_sealed = COALESCE($6, client_secret_sealed), master_key_version = COALESCE($7, master_key_version),
             follow_redirects = $10
         WHERE partner_id = $8 AND integration_key = $9",
    )
    .bind(json(&integration.oauth))
    .bind(&integration.api_base_url)
    .bind(json(&integration.allowed_hosts))
    .bind(json(&integration.inject))
    .bind(integration.updated_at)
    .bind(sealed.as_ref().map(|(blob, _)| blob.clone()))
    .bind(sealed.as_ref().map(|(_, version)| *version))
    .bind(tenant.partner_id())
    .bind(key)
    .bind(i64::from(integration.follow_redirects))
    .execute(&mut *tx)
    .await?;
    let event = NewEvent::lifecycle(tenant.actor(), "integration.updated").integration(key);
    audit::append(&mut tx, tenant.partner_id(), event).await?;
    let revision = crate::fleet::bump(&mut tx, &[]).await?;
    tx.commit().await?;
    crate::fleet::wait_for_replicas(db, revision).await;
    Ok(integration)
}

/// Deletes an integration that no active connection uses.
pub async fn delete(db: &Db, tenant: &Tenant, key: &str) -> Result<(), Error> {
    let mut tx = db.pool().begin().await?;
    let in_use: Option<(String,)> = sqlx::query_as(
        "UPDATE connections SET updated_at = updated_at
         WHERE id = (SELECT id FROM connections WHERE partner_id = $1 AND integration = $2 AND status <> 'revoked' LIMIT 1)
         RETURNING id",
    )
    .bind(tenant.partner_id())
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?;
    if in_use.is_some() {
        tx.rollback().await?;
        return Err(Error::State("integration_in_use"));
    }
    // Flows still open for this integration end here.
    sqlx::query(
        "UPDATE connect_sessions SET status = 'failed', error_code = 'integration_deleted', updated_at = $3
         WHERE partner_id = $1 AND integration_key = $2 AND status IN ('pending', 'started')",
    )
    .bind(tenant.partner_id())
    .bind(key)
    .bind(clock::now_ms())
    .execute(&mut *tx)
    .await?;
    let deleted =
        sqlx::query("DELETE FROM integrations WHERE partner_id = $1 AND integration_key = $2")
            .bind(tenant.partner_id())
            .bind(key)
            .execute(&mut *tx)
            .await?;
    if deleted.rows_affected() == 0 {
        tx.rollback().await?;
        return Err(Error::NotFound("integration"));
    }
    audit::append(
        &mut tx,
        tenant.partner_id(),
        NewEvent::lifecycle(tenant.actor(), "integration.deleted").integration(key),
    )
    .await?;
    let revision = crate::fleet::bump(&mut tx, &[]).await?;
    tx.commit().await?;
    crate::fleet::wait_for_replicas(db, revision).await;
    Ok(())
}

/// The tenant's integration named in a request body. One that does not exist (or is another
/// partner's) is a bad field value, 422 on `integration`: a 404 would say that the URL's own
/// object (the vault) is missing.
pub async fn named_in_body(db: &Db, tenant: &Tenant, key: &str) -> Result<Integration, Error> {
    get(db, tenant, key).await.map_err(|err| match err {
        Error::NotFound(_) => Error::invalid("integration", "names no integration of this partner"),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_strict_subdomains_only() {
        let allowed = vec!["api.github.com".to_owned(), "*.slack.com".to_owned()];
        let cases = [
            ("api.github.com", true),
            ("API.GITHUB.COM", true),
            ("api.github.com.evil.test", false),
            ("evilapi.github.com", false),
            ("files.slack.com", true),
            ("slack.com", false),
            ("evilslack.com", false),
            ("a.b.slack.com", true),
        ];
        for (host, expected) in cases {
            assert_eq!(host_allowed(host, &allowed), expected, "case {host}");
        }
    }

    #[test]
    fn callback_urls_name_the_integration() {
        assert_eq!(
            redirect_uri("https://connect.example/", "ptn_1", "github"),
            "https://connect.example/oauth/callback/ptn_1/github"
        );
    }
}
