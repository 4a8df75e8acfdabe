//! The injection proxy, as named phases: load the connection → pick the target → vet it → open
//! the credential (refreshing when due) → inject → forward → filter the response → audit.
//!
//! This is the first cut: request and response bodies are buffered with size caps, the
//! credential is injected as a bearer token (OAuth) or in the integration's style (API keys),
//! an upstream 401 triggers one refresh and one retry, and the injected value is redacted from
//! the response in its literal form. Streaming bodies, the DNS-level SSRF guard and redaction of
//! encoded forms are not here yet.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::credentials;
use crate::error::Error;
use crate::ids::{self, Kind};
use crate::integrations::{self, AuthType, Inject, Integration};
use crate::keys::MasterKeyRing;
use crate::net;
use crate::oauth::refresh::Refresher;
use crate::secret::{ExposeSecret, SecretString};
use crate::store::Db;

/// Largest response body passed back.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Request headers that never reach the upstream: the caller's own credentials, cookies,
/// proxy and hop-by-hop headers, and those the client library sets itself.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];
/// Response headers that are not passed back.
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "content-length",
    "set-cookie",
];

pub struct ProxyContext<'a> {
    pub db: &'a Db,
    pub keys: &'a Arc<MasterKeyRing>,
    pub http: &'a reqwest::Client,
    pub refresher: &'a Refresher,
    pub allow_private: bool,
}

/// What the caller asked for.
pub struct Outbound {
    pub method: reqwest::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// What goes back to the caller.
pub struct Inbound {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Forwards one request with the connection's credential.
pub async fn forward(
    ctx: &ProxyContext<'_>,
    tenant: &Tenant,
    connection_id: &str,
    outbound: Outbound,
) -> Result<Inbound, Error> {
    let started = Instant::now();
    let (vault_id, integration) = load_connection(ctx, tenant, connection_id).await?;
    let target = pick_target(ctx, &integration, &outbound)?;
    let host = target.host_str().unwrap_or_default().to_owned();
    let path = target.path().to_owned();

    let (mut credential, mut version) =
        open_credential(ctx, &integration, connection_id, None).await?;
    let mut response = send(ctx, &integration, &target, &outbound, &credential).await;
    if let Ok(first) = &response
        && first.status().as_u16() == 401
        && integration.auth_type == AuthType::Oauth2
    {
        let (renewed, renewed_version) =
            open_credential(ctx, &integration, connection_id, Some(version)).await?;
        if renewed_version != version {
            (credential, version) = (renewed, renewed_version);
            response = send(ctx, &integration, &target, &outbound, &credential).await;
        }
    }
    let _ = version;
    let result = match response {
        Ok(response) => filter_response(response, &credential).await,
        Err(err) => Err(err),
    };

    let status = result.as_ref().map(|r| i64::from(r.status)).ok();
    let mut event = NewEvent::lifecycle(tenant.actor(), "proxy.request")
        .vault(&vault_id)
        .connection(connection_id)
        .integration(&integration.key)
        .path(&path);
    event.method = Some(outbound.method.to_string());
    event.host = Some(host);
    event.status = status;
    event.duration_ms = Some(started.elapsed().as_millis() as i64);
    if let Err(Error::State(code)) = &result {
        event.outcome = "failure";
        event.reason = Some((*code).to_owned());
    }
    let mut tx = ctx.db.pool().begin().await?;
    sqlx::query("UPDATE connections SET last_used_at = $1 WHERE id = $2")
        .bind(clock::now_ms())
        .bind(connection_id)
        .execute(&mut *tx)
        .await?;
    audit::append(&mut tx, tenant.partner_id(), event).await?;
    tx.commit().await?;
    result
}

/// Phase 1: the connection must be the tenant's and usable; its integration must exist.
async fn load_connection(
    ctx: &ProxyContext<'_>,
    tenant: &Tenant,
    connection_id: &str,
) -> Result<(String, Integration), Error> {
    if !ids::is_valid(Kind::Connection, connection_id) {
        return Err(Error::NotFound("connection"));
    }
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT vault_id, integration, status FROM connections WHERE id = $1 AND partner_id = $2",
    )
    .bind(connection_id)
    .bind(tenant.partner_id())
    .fetch_optional(ctx.db.pool())
    .await?;
    let (vault_id, integration_key, status) = row.ok_or(Error::NotFound("connection"))?;
    match status.as_str() {
        "active" => {}
        "reauth_required" => return Err(Error::State("reauth_required")),
        _ => return Err(Error::State("connection_revoked")),
    }
    let integration = integrations::get(ctx.db, tenant, &integration_key).await?;
    Ok((vault_id, integration))
}

/// Phase 2: the integration's base URL plus the caller's path and query; the host must be on
/// the integration's allowlist and pass the URL vetting.
fn pick_target(
    ctx: &ProxyContext<'_>,
    integration: &Integration,
    outbound: &Outbound,
) -> Result<url::Url, Error> {
    let mut text = format!(
        "{}/{}",
        integration.api_base_url.trim_end_matches('/'),
        outbound.path.trim_start_matches('/')
    );
    if let Some(query) = outbound.query.as_deref().filter(|q| !q.is_empty()) {
        text.push('?');
        text.push_str(query);
    }
    let url = net::vet(&text, ctx.allow_private).map_err(|_| Error::State("host_not_allowed"))?;
    if !integrations::host_allowed(
        url.host_str().unwrap_or_default(),
        &integration.allowed_hosts,
    ) {
        return Err(Error::State("host_not_allowed"));
    }
    Ok(url)
}

/// Phase 3: the credential to inject, refreshed first when due.
async fn open_credential(
    ctx: &ProxyContext<'_>,
    integration: &Integration,
    connection_id: &str,
    rejected_version: Option<i64>,
) -> Result<(SecretString, i64), Error> {
    match integration.auth_type {
        AuthType::Oauth2 => {
            let usable = ctx
                .refresher
                .usable(
                    ctx.db,
                    ctx.keys,
                    integration,
                    connection_id,
                    rejected_version,
                )
                .await?;
            Ok((usable.tokens.access_token, usable.version))
        }
        AuthType::ApiKey => {
            let opened = credentials::open_for_partner(
                ctx.db,
                ctx.keys,
                &integration.partner_id,
                connection_id,
            )
            .await?;
            let text = String::from_utf8(opened.secret.expose_secret().to_vec())
                .map_err(|_| Error::Internal(anyhow::anyhow!("a stored API key is not UTF-8")))?;
            Ok((SecretString::from(text), opened.seal_version))
        }
    }
}

/// Phases 4 and 5: inject and forward.
async fn send(
    ctx: &ProxyContext<'_>,
    integration: &Integration,
    target: &url::Url,
    outbound: &Outbound,
    credential: &SecretString,
) -> Result<reqwest::Response, Error> {
    let mut url = target.clone();
    let mut request_headers = reqwest::header::HeaderMap::new();
    for (name, value) in &outbound.headers {
        let lower = name.to_ascii_lowercase();
        if DROPPED_REQUEST_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(lower.as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value),
        ) {
            request_headers.append(name, value);
        }
    }
    let injected = match &integration.inject {
        Inject::Bearer => Some((
            "authorization".to_owned(),
            format!("Bearer {}", credential.expose_secret()),
        )),
        Inject::Basic => Some((
            "authorization".to_owned(),
            format!("Basic {}", STANDARD.encode(credential.expose_secret())),
        )),
        Inject::Header { name } => Some((
            name.to_ascii_lowercase(),
            credential.expose_secret().to_owned(),
        )),
        Inject::Query { name } => {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != name)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(pairs)
                .append_pair(name, credential.expose_secret());
            None
        }
    };
    if let Some((name, value)) = injected {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::State("integration_misconfigured"))?;
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| Error::State("integration_misconfigured"))?;
        value.set_sensitive(true);
        request_headers.remove(&name);
        request_headers.insert(name, value);
    }
    ctx.http
        .request(outbound.method.clone(), url)
        .headers(request_headers)
        .body(outbound.body.clone())
        .send()
        .await
        .map_err(|err| {
            if err.is_timeout() {
                Error::State("upstream_timeout")
            } else {
                Error::State("upstream_unreachable")
            }
        })
}

/// Phase 6: pass status, headers and body back, with the injected value redacted.
async fn filter_response(
    response: reqwest::Response,
    credential: &SecretString,
) -> Result<Inbound, Error> {
    let status = response.status().as_u16();
    if response
        .content_length()
        .is_some_and(|len| len as usize > MAX_RESPONSE_BYTES)
    {
        return Err(Error::State("response_too_large"));
    }
    let secret = credential.expose_secret().as_bytes();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_owned(), redact(value.as_bytes(), secret)))
        .collect();
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| Error::State("upstream_unreachable"))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Error::State("response_too_large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Inbound {
        status,
        headers,
        body: redact(&body, secret),
    })
}

/// Replaces every occurrence of `secret` in `data`.
fn redact(data: &[u8], secret: &[u8]) -> Vec<u8> {
    const MARK: &[u8] = b"[REDACTED]";
    if secret.len() < 4 || data.len() < secret.len() {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(secret) {
            out.extend_from_slice(MARK);
            i += secret.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_occurrence() {
        assert_eq!(
            redact(b"a tok-123 b tok-123", b"tok-123"),
            b"a [REDACTED] b [REDACTED]"
        );
        assert_eq!(redact(b"nothing", b"tok-123"), b"nothing");
    }
}
