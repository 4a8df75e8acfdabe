//! The injection proxy, as named phases: load the connection → pick the target → vet it → open
//! the credential (refreshing when due) → inject → forward → filter the response → audit.
//!
//! The request body is buffered with a size cap by the HTTP layer; the response streams back
//! with a size cap. The credential is injected in the integration's style and replaces
//! anything the caller sent under that name; an upstream 401 triggers one refresh and one retry; the injected value is
//! redacted from the response in its literal, URL-encoded, JSON-escaped and base64 forms.
//! An upstream's redirect goes back to the caller as it came, unless the integration opts in to
//! following it (see [`crate::redirects`]).
//!
//! Revocation is immediate on every replica: a request holds its connection's [`Gate`] in
//! shared mode from before it reads the store revision until its response is read; a
//! revocation, after committing, waits for the gate in exclusive mode on every replica (see
//! [`crate::fleet`]). The connection, its integration and an API key's opened value come from
//! the replica's [`crate::cache::Cache`] while the store revision is unchanged.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::error::Error;
use crate::ids::{self, Kind};
use crate::integrations::{self, AuthType, Inject, Integration};
use crate::keys::MasterKeyRing;
use crate::net;
use crate::oauth::refresh::Refresher;
use crate::redaction::{self, Redactor};
use crate::redirects;
use crate::secret::{ExposeSecret, SecretString};
use crate::store::Db;

/// Largest response body passed back.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// The default deadline of one upstream call, body included (`CONNECT_UPSTREAM_TIMEOUT_SECS`).
pub const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Request headers that never reach the upstream: the caller's own credentials, cookies,
/// proxy and hop-by-hop headers, and those the client library sets itself.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "accept-encoding",
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

/// Per-connection gates between proxied requests (shared) and revocations (exclusive).
pub struct Gate {
    gates: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    /// The longest a proxied request may hold its gate: the upstream deadline.
    upstream_timeout: std::time::Duration,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(UPSTREAM_TIMEOUT)
    }
}

impl Gate {
    pub fn new(upstream_timeout: std::time::Duration) -> Self {
        Gate {
            gates: Default::default(),
            upstream_timeout,
        }
    }

    /// The deadline of one upstream call, body included.
    pub fn upstream_timeout(&self) -> std::time::Duration {
        self.upstream_timeout
    }

    fn of(&self, connection_id: &str) -> Arc<tokio::sync::RwLock<()>> {
        let mut gates = self.gates.lock().expect("gate map");
        if gates.len() > 10_000 {
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        gates.entry(connection_id.to_owned()).or_default().clone()
    }

    /// Held by a proxied request while it may use the credential.
    pub async fn enter(&self, connection_id: &str) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.of(connection_id).read_owned().await
    }

    /// Waits until no request of this process that may have read the credential is still
    /// using it. Call after the revocation is committed.
    pub async fn drain(&self, connection_id: &str) {
        // Bounded by the longest a proxied request may take.
        let wait = self.upstream_timeout + std::time::Duration::from_secs(5);
        let _ = tokio::time::timeout(wait, self.of(connection_id).write_owned()).await;
    }
}

pub struct ProxyContext<'a> {
    pub gate: &'a Gate,
    /// The store revision, the cache, and whether this replica may still forward.
    pub fleet: &'a Arc<crate::fleet::Fleet>,
    /// Commits each call's audit event, batched with concurrent calls.
    pub audit: &'a crate::audit_batch::AuditBatcher,
    /// How names are resolved and vetted (the same settings as the client's resolver).
    pub resolver: &'a net::ResolverSettings,
    pub db: &'a Db,
    /// The ring as it was when the request began.
    pub keys: Arc<MasterKeyRing>,
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
    pub body: bytes::Bytes,
}

/// What goes back to the caller.
pub struct Inbound {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Body,
}

/// A response body: small ones whole (sent with their length), others as a stream.
pub enum Body {
    Whole(bytes::Bytes),
    /// Redacted as it streams. An error ends it early (the upstream failed or the body passed
    /// the size cap after the status was sent); the caller then sees a truncated response.
    Stream(BodyStream),
}

/// A response body in chunks.
pub type BodyStream =
    futures_util::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// Bodies up to this size (by Content-Length) are read whole before answering, so the audit
/// event can say whether anything was redacted; larger or unsized ones stream.
const BUFFERED_BODY_BYTES: u64 = 1024 * 1024;
/// The cap of a streamed body.
pub const MAX_STREAMED_BYTES: u64 = 1024 * 1024 * 1024;

/// Forwards one request with the connection's credential.
pub async fn forward(
    ctx: &ProxyContext<'_>,
    tenant: &Tenant,
    connection_id: &str,
    outbound: Outbound,
) -> Result<Inbound, Error> {
    let started = Instant::now();
    let _in_use = ctx.gate.enter(connection_id).await;
    let mut known = Known {
        started: Some(started),
        ..Known::default()
    };

    let result = attempt(ctx, tenant, connection_id, &outbound, &mut known).await;

    record(
        ctx,
        tenant,
        connection_id,
        &outbound,
        known,
        &result,
        started,
    )
    .await?;
    result.map(|(inbound, _)| inbound)
}

/// What the phases learned, for the audit event and metrics of any outcome.
#[derive(Default)]
pub(crate) struct Known {
    vault_id: Option<String>,
    integration: Option<String>,
    /// The host and path (never the query) of the last hop, when redirects are followed.
    pub(crate) host: Option<String>,
    pub(crate) path: Option<String>,
    /// When the request began: followed redirects share the upstream deadline from here.
    pub(crate) started: Option<Instant>,
}

async fn attempt(
    ctx: &ProxyContext<'_>,
    tenant: &Tenant,
    connection_id: &str,
    outbound: &Outbound,
    known: &mut Known,
) -> Result<(Inbound, bool), Error> {
    let (vault_id, integration) = load_connection(ctx, tenant, connection_id).await?;
    let integration = integration.as_ref();
    known.vault_id = Some(vault_id);
    known.integration = Some(integration.key.clone());
    let target = pick_target(ctx, integration, outbound)?;
    vet_addresses(ctx, &target).await?;
    known.host = target.host_str().map(str::to_owned);
    known.path = Some(target.path().to_owned());

    let (mut credential, version) = open_credential(ctx, integration, connection_id, None).await?;
    let mut response = send(ctx, integration, &target, outbound, &credential).await;
    if let Ok(first) = &response
        && first.status().as_u16() == 401
        && integration.auth_type == AuthType::Oauth2
    {
        let (renewed, renewed_version) =
            open_credential(ctx, integration, connection_id, Some(version)).await?;
        if renewed_version != version {
            credential = renewed;
            response = send(ctx, integration, &target, outbound, &credential).await;
        }
    }
    let response = redirects::follow(
        ctx,
        integration,
        &target,
        outbound,
        &credential,
        response,
        known,
    )
    .await;
    let redacted_later = later_redaction_report(ctx.db.clone(), tenant, connection_id, known);
    filter_response(response?, &credential, &integration.inject, redacted_later).await
}

/// Records, after the fact, that a streamed body had to be redacted (the request's own audit
/// event was committed before the body started).
fn later_redaction_report(
    db: Db,
    tenant: &Tenant,
    connection_id: &str,
    known: &Known,
) -> Box<dyn FnOnce() + Send> {
    let partner = tenant.partner_id().to_owned();
    let mut event =
        NewEvent::lifecycle(tenant.actor(), "proxy.response_redacted").connection(connection_id);
    event.vault_id = known.vault_id.clone();
    event.integration = known.integration.clone();
    event.host = known.host.clone();
    event.path = known.path.clone();
    event.reason = Some("redacted".to_owned());
    Box::new(move || {
        tokio::spawn(async move {
            let appended = async {
                let mut tx = db.pool().begin().await?;
                audit::append(&mut tx, &partner, event).await?;
                tx.commit().await?;
                Ok::<_, Error>(())
            };
            if let Err(err) = appended.await {
                tracing::warn!(error = %err, "recording a streamed redaction failed");
            }
        });
    })
}

/// Phase 7: metrics and the audit event, committed before the caller gets an answer. A request
/// whose connection id is not even well-formed is not recorded: the id is caller input.
async fn record(
    ctx: &ProxyContext<'_>,
    tenant: &Tenant,
    connection_id: &str,
    outbound: &Outbound,
    known: Known,
    result: &Result<(Inbound, bool), Error>,
    started: Instant,
) -> Result<(), Error> {
    let status_label = match result {
        Ok((inbound, _)) => inbound.status.to_string(),
        Err(Error::State(code)) => (*code).to_owned(),
        Err(Error::NotFound(_)) => "not_found".to_owned(),
        Err(_) => "error".to_owned(),
    };
    let integration_label = known
        .integration
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    metrics::counter!("connect_proxy_requests_total", "integration" => integration_label.clone(), "status" => status_label)
        .increment(1);
    metrics::histogram!("connect_proxy_request_duration_seconds", "integration" => integration_label)
        .record(started.elapsed().as_secs_f64());
    if !ids::is_valid(Kind::Connection, connection_id) {
        return Ok(());
    }

    let mut event = NewEvent::lifecycle(tenant.actor(), "proxy.request").connection(connection_id);
    event.vault_id = known.vault_id;
    event.integration = known.integration;
    event.host = known.host;
    event.path = known.path;
    event.method = Some(outbound.method.to_string());
    event.status = result.as_ref().map(|(r, _)| i64::from(r.status)).ok();
    event.duration_ms = Some(started.elapsed().as_millis() as i64);
    match result {
        Err(Error::State(code)) => {
            event.outcome = "failure";
            event.reason = Some((*code).to_owned());
        }
        Err(Error::NotFound(_)) => {
            event.outcome = "failure";
            event.reason = Some("not_found".to_owned());
        }
        Err(_) => event.outcome = "failure",
        Ok((_, true)) => event.reason = Some("redacted".to_owned()),
        Ok((_, false)) => {}
    }
    let used = result.is_ok().then_some(connection_id);
    ctx.audit.append(tenant.partner_id(), event, used).await?;
    Ok(())
}

/// Phase 1: the connection must be the tenant's and usable; its integration must exist. Read
/// at the store revision of this moment (the request already holds its gate), from the cache
/// when nothing changed since.
async fn load_connection(
    ctx: &ProxyContext<'_>,
    tenant: &Tenant,
    connection_id: &str,
) -> Result<(String, Arc<Integration>), Error> {
    if !ids::is_valid(Kind::Connection, connection_id) {
        return Err(Error::NotFound("connection"));
    }
    let revision = ctx.fleet.revision()?;
    let live = ctx
        .fleet
        .cache()
        .connection(ctx.db, revision, connection_id)
        .await?
        .filter(|live| live.partner_id == tenant.partner_id())
        .ok_or(Error::NotFound("connection"))?;
    match live.status.as_str() {
        "active" => {}
        "reauth_required" => return Err(Error::State("reauth_required")),
        _ => return Err(Error::State("connection_revoked")),
    }
    Ok((live.vault_id, live.integration))
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

/// Phase 2b: a name must resolve to at least one address that may be reached (literal
/// addresses were vetted with the URL). The client's resolver repeats this check at connect
/// time and connects only to the addresses that pass, so a name that changes its answer in
/// between (DNS rebinding) still reaches no private address.
pub(crate) async fn vet_addresses(ctx: &ProxyContext<'_>, target: &url::Url) -> Result<(), Error> {
    if let Some(url::Host::Domain(name)) = target.host() {
        net::resolve_vetted(ctx.resolver, name)
            .await
            .map_err(|err| match err {
                net::ResolveError::Blocked(_) => Error::State("host_not_allowed"),
                net::ResolveError::NotFound => Error::State("upstream_unreachable"),
            })?;
    }
    Ok(())
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
                    &ctx.keys,
                    integration,
                    connection_id,
                    rejected_version,
                )
                .await?;
            Ok((usable.tokens.access_token, usable.version))
        }
        AuthType::ApiKey => {
            ctx.fleet
                .cache()
                .api_key(ctx.db, &ctx.keys, &integration.partner_id, connection_id)
                .await
        }
    }
}

/// Phases 4 and 5: inject and forward.
pub(crate) async fn send(
    ctx: &ProxyContext<'_>,
    integration: &Integration,
    target: &url::Url,
    outbound: &Outbound,
    credential: &SecretString,
) -> Result<reqwest::Response, Error> {
    let mut url = target.clone();
    let mut request_headers = forwarded_headers(outbound);
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
    dispatch(ctx, &outbound.method, url, request_headers, &outbound.body).await
}

/// The caller's headers that may reach an upstream (see [`DROPPED_REQUEST_HEADERS`]), and
/// `Accept-Encoding: identity`: redaction reads the body as sent, so it must not be compressed.
pub(crate) fn forwarded_headers(outbound: &Outbound) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &outbound.headers {
        let lower = name.to_ascii_lowercase();
        if DROPPED_REQUEST_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(lower.as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(
        reqwest::header::ACCEPT_ENCODING,
        reqwest::header::HeaderValue::from_static("identity"),
    );
    headers
}

/// Sends one upstream request, within the upstream deadline, with failures as problem codes.
pub(crate) async fn dispatch(
    ctx: &ProxyContext<'_>,
    method: &reqwest::Method,
    url: url::Url,
    headers: reqwest::header::HeaderMap,
    body: &bytes::Bytes,
) -> Result<reqwest::Response, Error> {
    // A replica that lost touch with the store may have missed a revocation: it sends nothing.
    if !ctx.fleet.lease_held() {
        return Err(Error::State("store_unavailable"));
    }
    ctx.http
        .request(method.clone(), url)
        .timeout(ctx.gate.upstream_timeout())
        .headers(headers)
        .body(body.clone())
        .send()
        .await
        .map_err(|err| {
            if net::is_blocked(&err) {
                // The client's resolver refused every address the name has now.
                Error::State("host_not_allowed")
            } else if err.is_timeout() {
                Error::State("upstream_timeout")
            } else {
                Error::State("upstream_unreachable")
            }
        })
}

/// Phase 6: pass status, headers and body back, with every form of the injected value
/// redacted — also when a form is split across chunks. The flag says whether anything was
/// redacted before the answer starts; `redacted_later` runs if a streamed body had to be.
async fn filter_response(
    response: reqwest::Response,
    credential: &SecretString,
    inject: &Inject,
    redacted_later: Box<dyn FnOnce() + Send>,
) -> Result<(Inbound, bool), Error> {
    let status = response.status().as_u16();
    if response
        .content_length()
        .is_some_and(|len| len > MAX_STREAMED_BYTES)
    {
        return Err(Error::State("response_too_large"));
    }
    // A compressed body could carry the credential past redaction: refuse it.
    let encoding = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .map(|v| v.as_bytes().to_ascii_lowercase());
    if encoding.is_some_and(|e| e != b"identity") {
        return Err(Error::State("upstream_encoding_refused"));
    }
    let forms = redaction::forms(credential, inject);
    let mut redacted = false;
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            let (clean, hit) = redaction::redact(value.as_bytes(), &forms);
            redacted |= hit;
            (name.as_str().to_owned(), clean)
        })
        .collect();
    if response
        .content_length()
        .is_some_and(|len| len <= BUFFERED_BODY_BYTES)
    {
        let body = response
            .bytes()
            .await
            .map_err(|_| Error::State("upstream_unreachable"))?;
        let (body, hit) = redaction::redact(&body, &forms);
        let body = Body::Whole(bytes::Bytes::from(body));
        return Ok((
            Inbound {
                status,
                headers,
                body,
            },
            redacted || hit,
        ));
    }
    let body = Body::Stream(redacting_stream(
        response,
        Redactor::new(forms),
        redacted_later,
    ));
    Ok((
        Inbound {
            status,
            headers,
            body,
        },
        redacted,
    ))
}

fn redacting_stream(
    response: reqwest::Response,
    redactor: Redactor,
    redacted_later: Box<dyn FnOnce() + Send>,
) -> BodyStream {
    struct State {
        upstream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        redactor: Redactor,
        seen: u64,
        done: bool,
        redacted_later: Option<Box<dyn FnOnce() + Send>>,
    }
    let state = State {
        upstream: response.bytes_stream().boxed(),
        redactor,
        seen: 0,
        done: false,
        redacted_later: Some(redacted_later),
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let item = match state.upstream.next().await {
            Some(Ok(chunk)) => {
                state.seen += chunk.len() as u64;
                if state.seen > MAX_STREAMED_BYTES {
                    state.done = true;
                    Err(std::io::Error::other(
                        "the upstream response passed the size cap",
                    ))
                } else {
                    Ok(bytes::Bytes::from(state.redactor.push(&chunk)))
                }
            }
            Some(Err(_)) => {
                state.done = true;
                Err(std::io::Error::other("the upstream response failed"))
            }
            None => {
                state.done = true;
                let tail = state.redactor.finish();
                if state.redactor.hit
                    && let Some(report) = state.redacted_later.take()
                {
                    report();
                }
                Ok(bytes::Bytes::from(tail))
            }
        };
        Some((item, state))
    })
    .boxed()
}
