//! The consent flow: connect session → hosted page → provider → callback → sealed token set.
//!
//! - A connect session is created by the partner for one vault and one integration; its URL
//!   carries a random token (only its hash is stored) and lives 30 minutes.
//! - `start` mints `state` (256 random bits, stored hashed, single use), a PKCE S256 pair
//!   (verifier sealed to the master key) and a browser-binding cookie (stored hashed), then
//!   sends the browser to the provider.
//! - `callback` accepts a response only on the integration's own callback URL, for a started
//!   session, from the browser that started it, with the right `iss` (RFC 9207), once. The code
//!   is exchanged through the hardened client and the token set is sealed to the vault's public
//!   key. Any failure stores nothing and ends on an error outcome.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::endpoint::{self, EndpointError};
use super::token_response::TokenError;
use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::credentials::{self, Deposit};
use crate::error::Error;
use crate::ids::{self, Kind};
use crate::integrations::{self, AuthType, Integration};
use crate::keys::{Binding, MasterKeyRing};
use crate::secret::{ExposeSecret, SecretString, secret_bytes};
use crate::store::Db;
use crate::{settings, vaults};

/// How long a connect session can be used.
pub const SESSION_TTL_MS: i64 = 30 * 60 * 1000;

/// What the flow needs from the server.
pub struct FlowContext<'a> {
    pub db: &'a Db,
    /// The ring as it was when the request began.
    pub keys: std::sync::Arc<MasterKeyRing>,
    pub http: &'a reqwest::Client,
    pub public_url: &'a str,
    pub allow_private: bool,
}

/// A new connect session. `url` carries the session's bearer token: hand it to the end user only.
pub struct SessionCreated {
    pub id: String,
    pub url: String,
    pub expires_at: i64,
}

fn random_token() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Creates a connect session for one of the tenant's vaults and integrations.
pub async fn create_session(
    ctx: &FlowContext<'_>,
    tenant: &Tenant,
    vault_id: &str,
    integration_key: &str,
    return_url: Option<&str>,
) -> Result<SessionCreated, Error> {
    let vault = vaults::get(ctx.db, tenant, vault_id).await?;
    if vault.status != "active" {
        return Err(Error::State("vault_revoked"));
    }
    integrations::named_in_body(ctx.db, tenant, integration_key).await?;
    if let Some(url) = return_url
        && !settings::return_urls(ctx.db, tenant.partner_id())
            .await?
            .iter()
            .any(|allowed| allowed == url)
    {
        return Err(Error::invalid(
            "return_url",
            "is not one of the partner's allowed return URLs",
        ));
    }
    let id = ids::new(Kind::ConnectSession);
    let token = random_token();
    let now = clock::now_ms();
    let expires_at = now + SESSION_TTL_MS;
    let mut tx = ctx.db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO connect_sessions (id, partner_id, vault_id, integration_key, token_hash, return_url, status,
             expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $8)",
    )
    .bind(&id)
    .bind(tenant.partner_id())
    .bind(vault_id)
    .bind(integration_key)
    .bind(hash(token.expose_secret()))
    .bind(return_url)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let event = NewEvent::lifecycle(tenant.actor(), "connect_session.created")
        .vault(vault_id)
        .integration(integration_key);
    audit::append(&mut tx, tenant.partner_id(), event).await?;
    tx.commit().await?;
    let url = format!(
        "{}/connect/{}",
        ctx.public_url.trim_end_matches('/'),
        token.expose_secret()
    );
    Ok(SessionCreated {
        id,
        url,
        expires_at,
    })
}

/// A flow failure, as a code for the error page and the partner's return URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub return_url: Option<String>,
}

impl Failure {
    fn new(code: &str, return_url: Option<String>) -> Self {
        Failure {
            code: code.to_owned(),
            return_url,
        }
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    partner_id: String,
    vault_id: String,
    integration_key: String,
    return_url: Option<String>,
    status: String,
    browser_hash: Option<String>,
    verifier_sealed: Option<Vec<u8>>,
    master_key_version: Option<i64>,
    expires_at: i64,
}

const SESSION_COLUMNS: &str = "id, partner_id, vault_id, integration_key, return_url, status, browser_hash, verifier_sealed, master_key_version, expires_at";

/// What the hosted page shows.
pub struct Page {
    pub partner_name: String,
    /// The catalog template, or `custom`.
    pub provider: String,
    pub integration_key: String,
    pub auth_type: AuthType,
}

async fn session_by_token(db: &Db, token: &str) -> Result<Option<SessionRow>, Error> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM connect_sessions WHERE token_hash = $1");
    Ok(sqlx::query_as(&sql)
        .bind(hash(token))
        .fetch_optional(db.pool())
        .await?)
}

fn usable(session: &SessionRow) -> Result<(), Failure> {
    if clock::now_ms() > session.expires_at {
        return Err(Failure::new("session_expired", session.return_url.clone()));
    }
    if !matches!(session.status.as_str(), "pending" | "started") {
        return Err(Failure::new("session_used", session.return_url.clone()));
    }
    Ok(())
}

/// The hosted page's content for a session token.
pub async fn page(db: &Db, token: &str) -> Result<Result<Page, Failure>, Error> {
    let Some(session) = session_by_token(db, token).await? else {
        return Ok(Err(Failure::new("session_not_found", None)));
    };
    if let Err(failure) = usable(&session) {
        return Ok(Err(failure));
    }
    let Some(integration) =
        integrations::find(db, &session.partner_id, &session.integration_key).await?
    else {
        return Ok(Err(Failure::new(
            "integration_not_found",
            session.return_url,
        )));
    };
    let (partner_name,): (String,) = sqlx::query_as("SELECT name FROM partners WHERE id = $1")
        .bind(&session.partner_id)
        .fetch_one(db.pool())
        .await?;
    Ok(Ok(Page {
        partner_name,
        provider: integration.provider.clone(),
        integration_key: integration.key,
        auth_type: integration.auth_type,
    }))
}

/// Completes an `api_key` session with the key the end user pasted on the hosted page.
pub async fn paste(
    ctx: &FlowContext<'_>,
    token: &str,
    api_key: &SecretString,
) -> Result<Result<(String, Option<String>), Failure>, Error> {
    let Some(session) = session_by_token(ctx.db, token).await? else {
        return Ok(Err(Failure::new("session_not_found", None)));
    };
    if let Err(failure) = usable(&session) {
        return Ok(Err(failure));
    }
    let back = session.return_url.clone();
    let integration =
        integrations::find(ctx.db, &session.partner_id, &session.integration_key).await?;
    if !integration.is_some_and(|i| i.auth_type == AuthType::ApiKey) {
        return Ok(Err(Failure::new("integration_not_found", back)));
    }
    if crate::connections::validate_api_key(api_key).is_err() {
        // The form can be submitted again: the session is not consumed.
        return Ok(Err(Failure::new("invalid_api_key_format", None)));
    }
    // Claiming the session, storing the key and recording the outcome are one transaction: a
    // crash or a failure anywhere in it leaves the session as it was, usable again, and no
    // connection behind. The claim writes first (see `crate::store`) and makes a concurrent
    // paste of the same session wait for this one, then find it used.
    let mut tx = ctx.db.pool().begin().await?;
    let claimed = sqlx::query(
        "UPDATE connect_sessions SET status = 'exchanging', updated_at = $1 WHERE id = $2 AND status IN ('pending', 'started')",
    )
    .bind(clock::now_ms())
    .bind(&session.id)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(Err(Failure::new("session_used", back)));
    }
    let deposit = Deposit {
        vault_id: &session.vault_id,
        integration: &session.integration_key,
        scopes: "",
        expires_at: None,
        actor: "end_user",
    };
    let secret = secret_bytes(api_key.expose_secret().as_bytes().to_vec());
    let (status, connection) =
        match credentials::deposit_in(&mut tx, &session.partner_id, deposit, &secret).await {
            Ok(connection_id) => ("completed", Some(connection_id)),
            // The vault was deleted: nothing was written but the claim; the session ends.
            Err(Error::NotFound(_)) => ("failed", None),
            Err(other) => return Err(other),
        };
    sqlx::query("UPDATE connect_sessions SET status = $1, connection_id = $2, updated_at = $3 WHERE id = $4")
        .bind(status)
        .bind(&connection)
        .bind(clock::now_ms())
        .bind(&session.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(match connection {
        Some(id) => Ok((id, back)),
        None => Err(Failure::new("vault_revoked", back)),
    })
}

/// Where to send the browser, and the binding cookie to set on it.
pub struct Start {
    pub location: String,
    pub cookie_name: String,
    pub cookie_value: SecretString,
}

/// The name of a session's browser-binding cookie.
pub fn cookie_name(session_id: &str) -> String {
    format!("connect_{session_id}")
}

/// Starts (or restarts) the provider leg of a session.
pub async fn start(ctx: &FlowContext<'_>, token: &str) -> Result<Result<Start, Failure>, Error> {
    let Some(session) = session_by_token(ctx.db, token).await? else {
        return Ok(Err(Failure::new("session_not_found", None)));
    };
    if let Err(failure) = usable(&session) {
        return Ok(Err(failure));
    }
    let integration =
        integrations::find(ctx.db, &session.partner_id, &session.integration_key).await?;
    let Some(integration) = integration.filter(|i| i.oauth.is_some()) else {
        return Ok(Err(Failure::new(
            "integration_not_found",
            session.return_url,
        )));
    };
    let settings = integration.oauth.as_ref().expect("filtered on oauth");
    let state = random_token();
    let browser = random_token();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let binding = |v| Binding::partner_secret("pkce_verifier", &session.partner_id, &session.id, v);
    let (sealed_verifier, version) = ctx
        .keys
        .seal_to_master(binding, verifier.secret().as_bytes())?;
    let updated = sqlx::query(
        "UPDATE connect_sessions SET status = 'started', state_hash = $1, browser_hash = $2, verifier_sealed = $3,
             master_key_version = $4, updated_at = $5
         WHERE id = $6 AND status IN ('pending', 'started')",
    )
    .bind(hash(state.expose_secret()))
    .bind(hash(browser.expose_secret()))
    .bind(&sealed_verifier)
    .bind(version)
    .bind(clock::now_ms())
    .bind(&session.id)
    .execute(ctx.db.pool())
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(Err(Failure::new("session_used", session.return_url)));
    }
    let redirect =
        integrations::redirect_uri(ctx.public_url, &session.partner_id, &integration.key);
    let location = authorization_url(settings, &redirect, state.expose_secret(), challenge)
        .map_err(|reason| {
            Error::Internal(anyhow::anyhow!(
                "cannot build the authorization URL: {reason}"
            ))
        })?;
    Ok(Ok(Start {
        location,
        cookie_name: cookie_name(&session.id),
        cookie_value: browser,
    }))
}

fn authorization_url(
    settings: &integrations::OAuthSettings,
    redirect_uri: &str,
    state: &str,
    challenge: PkceCodeChallenge,
) -> Result<String, String> {
    let client = oauth2::basic::BasicClient::new(ClientId::new(settings.client_id.clone()))
        .set_auth_uri(AuthUrl::new(settings.authorization_url.clone()).map_err(|e| e.to_string())?)
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| e.to_string())?);
    let mut request = client.authorize_url(|| CsrfToken::new(state.to_owned()));
    if settings.scope_param != "scope" {
        request = request.add_extra_param(
            settings.scope_param.clone(),
            settings.scopes.join(&settings.scope_separator),
        );
    } else if settings.scope_separator == " " {
        request = request.add_scopes(settings.scopes.iter().cloned().map(Scope::new));
    } else if !settings.scopes.is_empty() {
        request = request.add_scope(Scope::new(settings.scopes.join(&settings.scope_separator)));
    }
    if settings.pkce {
        request = request.set_pkce_challenge(challenge);
    }
    for (name, value) in &settings.extra_authorize_params {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    Ok(request.url().0.to_string())
}

/// The provider's answer at the callback URL.
pub struct Callback {
    pub partner_id: String,
    pub integration_key: String,
    pub code: Option<SecretString>,
    pub state: Option<SecretString>,
    pub iss: Option<String>,
    pub error: Option<String>,
    /// The request's `connect_*` cookies; the one named by [`cookie_name`] for the session
    /// that `state` points at must match the browser that started the flow.
    pub cookies: Vec<(String, SecretString)>,
}

/// Completes a flow. Returns the new connection and where to send the browser, or a failure.
pub async fn callback(
    ctx: &FlowContext<'_>,
    input: Callback,
) -> Result<Result<(String, Option<String>), Failure>, Error> {
    let Some(state) = input
        .state
        .as_ref()
        .filter(|s| !s.expose_secret().is_empty())
    else {
        return Ok(Err(Failure::new("invalid_state", None)));
    };
    let sql = format!("SELECT {SESSION_COLUMNS} FROM connect_sessions WHERE state_hash = $1");
    let session: Option<SessionRow> = sqlx::query_as(&sql)
        .bind(hash(state.expose_secret()))
        .fetch_optional(ctx.db.pool())
        .await?;
    let Some(session) = session else {
        return Ok(Err(Failure::new("invalid_state", None)));
    };
    let back = session.return_url.clone();
    if session.partner_id != input.partner_id || session.integration_key != input.integration_key {
        // A response delivered to another integration's callback: a mix-up.
        return Ok(Err(Failure::new("invalid_state", None)));
    }
    if session.status != "started" {
        return Ok(Err(Failure::new("state_already_used", back)));
    }
    // Checked before the session is consumed, so that someone who learned the `state` cannot
    // spend the user's flow from another browser.
    let expected_cookie = cookie_name(&session.id);
    let browser_ok = input.cookies.iter().any(|(name, value)| {
        *name == expected_cookie
            && session.browser_hash.as_deref() == Some(hash(value.expose_secret()).as_str())
    });
    if !browser_ok {
        return Ok(Err(Failure::new("browser_mismatch", None)));
    }
    // From here on the session is consumed, whatever happens.
    let claimed = sqlx::query(
        "UPDATE connect_sessions SET status = 'exchanging', updated_at = $1 WHERE id = $2 AND status = 'started'",
    )
    .bind(clock::now_ms())
    .bind(&session.id)
    .execute(ctx.db.pool())
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(Err(Failure::new("state_already_used", back)));
    }
    let finished = match finish(ctx, &session, &input).await {
        Ok(finished) => finished,
        Err(err) => {
            tracing::error!(session_id = %session.id, error = %err, "connect flow failed unexpectedly");
            Err("internal_error".to_owned())
        }
    };
    match finished {
        Ok(connection_id) => {
            sqlx::query(
                "UPDATE connect_sessions SET status = 'completed', connection_id = $1, verifier_sealed = NULL,
                     updated_at = $2 WHERE id = $3",
            )
            .bind(&connection_id)
            .bind(clock::now_ms())
            .bind(&session.id)
            .execute(ctx.db.pool())
            .await?;
            Ok(Ok((connection_id, back)))
        }
        Err(code) => {
            sqlx::query(
                "UPDATE connect_sessions SET status = 'failed', error_code = $1, verifier_sealed = NULL, updated_at = $2
                 WHERE id = $3",
            )
            .bind(&code)
            .bind(clock::now_ms())
            .bind(&session.id)
            .execute(ctx.db.pool())
            .await?;
            let mut event = NewEvent::lifecycle("end_user", "connect_session.failed")
                .vault(&session.vault_id)
                .integration(&session.integration_key)
                .reason(&code);
            event.outcome = "failure";
            let mut tx = ctx.db.pool().begin().await?;
            audit::append(&mut tx, &session.partner_id, event).await?;
            tx.commit().await?;
            tracing::info!(session_id = %session.id, code = %code, "connect flow failed");
            Ok(Err(Failure::new(&code, back)))
        }
    }
}

/// Checks the response and exchanges the code. `Err(code)` is a flow failure.
async fn finish(
    ctx: &FlowContext<'_>,
    session: &SessionRow,
    input: &Callback,
) -> Result<Result<String, String>, Error> {
    if clock::now_ms() > session.expires_at {
        return Ok(Err("session_expired".into()));
    }
    let Some(integration) =
        integrations::find(ctx.db, &session.partner_id, &session.integration_key).await?
    else {
        return Ok(Err("integration_not_found".into()));
    };
    let settings = integration
        .oauth
        .clone()
        .ok_or(Error::State("integration_is_not_oauth"))?;
    if let Some(iss) = &input.iss {
        if settings
            .issuer
            .as_deref()
            .is_some_and(|expected| expected != iss)
        {
            return Ok(Err("issuer_mismatch".into()));
        }
    } else if settings.iss_parameter_supported {
        return Ok(Err("issuer_missing".into()));
    }
    if let Some(error) = &input.error {
        return Ok(Err(sanitize_code(error)));
    }
    let Some(code) = input
        .code
        .as_ref()
        .filter(|c| !c.expose_secret().is_empty())
    else {
        return Ok(Err("missing_code".into()));
    };
    let verifier = match (&session.verifier_sealed, session.master_key_version) {
        (Some(blob), Some(version)) => {
            let binding =
                Binding::partner_secret("pkce_verifier", &session.partner_id, &session.id, version);
            let bytes = ctx.keys.open_from_master(version, &binding, blob)?;
            Some(SecretString::from(
                String::from_utf8_lossy(bytes.expose_secret()).into_owned(),
            ))
        }
        _ => None,
    };
    let verifier = verifier.filter(|_| settings.pkce);
    let secret = integrations::client_secret(ctx.db, &ctx.keys, &integration).await?;
    let redirect =
        integrations::redirect_uri(ctx.public_url, &session.partner_id, &integration.key);
    let exchanged = endpoint::exchange_code(
        ctx.http,
        &settings,
        &secret,
        code,
        &redirect,
        verifier.as_ref(),
        ctx.allow_private,
    )
    .await;
    let (tokens, warnings) = match exchanged {
        Ok(result) => result,
        Err(err) => {
            tracing::info!(session_id = %session.id, error = %err, "code exchange failed");
            let code = match &err {
                EndpointError::Token(TokenError::InvalidResponse(_)) => {
                    "invalid_token_response".to_owned()
                }
                _ => err
                    .oauth_code()
                    .map(sanitize_code)
                    .unwrap_or_else(|| "token_exchange_failed".into()),
            };
            return Ok(Err(code));
        }
    };
    for warning in warnings {
        tracing::warn!(session_id = %session.id, warning, "token response quirk");
    }
    deposit_tokens(ctx, session, &integration, tokens)
        .await
        .map(Ok)
}

async fn deposit_tokens(
    ctx: &FlowContext<'_>,
    session: &SessionRow,
    integration: &Integration,
    tokens: super::token_response::TokenSet,
) -> Result<String, Error> {
    let settings = integration.oauth.as_ref().expect("an OAuth integration");
    let expires_at = tokens.expires_in.map(clock::expiry_after);
    let scopes = tokens
        .scopes
        .clone()
        .unwrap_or_else(|| settings.scopes.clone())
        .join(" ");
    let sealed = tokens.to_sealed_bytes();
    let deposit = Deposit {
        vault_id: &session.vault_id,
        integration: &integration.key,
        scopes: &scopes,
        expires_at,
        actor: "end_user",
    };
    credentials::deposit_for_partner(
        ctx.db,
        &session.partner_id,
        deposit,
        &secret_bytes(sealed.to_vec()),
    )
    .await
}

/// Provider error codes are echoed to the partner's return URL: keep them to `a-z0-9_`.
fn sanitize_code(code: &str) -> String {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    if clean.is_empty() {
        "provider_error".into()
    } else {
        clean.to_ascii_lowercase()
    }
}
