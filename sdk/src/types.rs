//! Request and response bodies of the v1 API.

mod webhooks;
pub use webhooks::*;

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Never serialises a write-only field (`client_secret`), while the OpenAPI document still lists
/// it as an accepted, `writeOnly` property (a plain `skip_serializing` would drop it from there).
fn write_only<T>(_: &T) -> bool {
    true
}

/// An RFC 9457 problem: every error answer of the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "type": "urn:agentsecrets-connect:problem:not_found",
    "title": "Not found",
    "status": 404,
    "detail": "vault not found",
    "code": "not_found",
    "retryable": false
})))]
pub struct Problem {
    /// A URI naming the problem type: `urn:agentsecrets-connect:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable, machine-readable code.
    pub code: String,
    /// The field the problem is about, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    /// The object that already exists, for conflicts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub existing_id: Option<String>,
    /// Whether repeating the same request later could succeed.
    pub retryable: bool,
}

/// Body of `POST /v1/vaults`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"external_user_id": "u-123", "metadata": {"plan": "pro"}})))]
#[serde(deny_unknown_fields)]
pub struct CreateVault {
    /// The partner's own id for the end user: 1 to 256 of `A-Z a-z 0-9 . _ - : @ + = | /`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 256,
            pattern = r"^[A-Za-z0-9._:@+=|/-]{1,256}$"
        )
    )]
    pub external_user_id: String,
    /// Free-form JSON object (at most 50 keys, 8 KiB). Never put credentials here.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Whether an object can still be used.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!("active")))]
#[serde(rename_all = "snake_case")]
pub enum VaultStatus {
    Active,
    Revoked,
}

/// One end user's credential vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "external_user_id": "u-123", "metadata": {"plan": "pro"},
    "status": "active", "created_at": "2026-12-03T18:00:00Z", "revoked_at": null
})))]
pub struct Vault {
    pub id: String,
    pub external_user_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub status: VaultStatus,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; set once the vault is deleted.
    pub revoked_at: Option<String>,
}

/// A page of vaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"data": [{"id": "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1B", "external_user_id": "u-123", "metadata": {"plan": "pro"}, "status": "active", "created_at": "2026-12-03T18:00:00Z", "revoked_at": null}], "next_cursor": null})))]
pub struct VaultList {
    pub data: Vec<Vault>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Answer of `DELETE /v1/vaults/{vault_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "status": "revoked", "connections_revoked": 2
})))]
pub struct VaultDeleted {
    pub id: String,
    pub status: VaultStatus,
    pub connections_revoked: i64,
}

/// Whether an API key still authenticates.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!("active")))]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

/// What an API key may do. `admin` implies every other scope.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!("proxy")))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Admin,
    Vaults,
    Connect,
    Proxy,
    Audit,
}

/// Body of `POST /v1/api-keys`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "agent runtime", "scopes": ["proxy"]})))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1 to 100 characters, for people to tell keys apart.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    /// At least one; only scopes the calling key holds (an `admin` key may grant any).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub scopes: Vec<Scope>,
}

/// An API key's metadata; the key itself is shown only when created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "key_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "name": "agent runtime", "prefix": "acs_Xk3v9q",
    "scopes": ["proxy"], "status": "active", "created_at": "2026-12-03T18:00:00Z", "revoked_at": null
})))]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub status: KeyStatus,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Answer of `POST /v1/api-keys`: the key's metadata and, this once, the key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"id": "key_01JDQ3W2ZK9V7T4S8N6M5R3P1B", "name": "agent runtime", "prefix": "acs_Xk3v9q", "scopes": ["proxy"], "status": "active", "created_at": "2026-12-03T18:00:00Z", "revoked_at": null, "api_key": "acs_Xk3v9q…shown once"})))]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The key. Store it now: it is never shown again.
    pub api_key: String,
}

/// A page of API keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"data": [{"id": "key_01JDQ3W2ZK9V7T4S8N6M5R3P1B", "name": "agent runtime", "prefix": "acs_Xk3v9q", "scopes": ["proxy"], "status": "active", "created_at": "2026-12-03T18:00:00Z", "revoked_at": null}], "next_cursor": null})))]
pub struct ApiKeyList {
    pub data: Vec<ApiKey>,
    pub next_cursor: Option<String>,
}

/// One audit event. There is no field that could hold a credential value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "evt_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "seq": 3, "occurred_at": "2026-12-03T18:00:00Z",
    "actor": "key_01JDQ3W2ZK9V7T4S8N6M5R3P1B", "action": "vault.created",
    "vault_id": "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1C", "connection_id": null, "integration": null,
    "method": null, "host": null, "path": null, "status": null, "outcome": "success", "reason": null,
    "duration_ms": null, "prev_hash": "9f2c…", "hash": "41ab…"
})))]
pub struct AuditEvent {
    pub id: String,
    /// Position in the partner's chain, from 1.
    pub seq: i64,
    pub occurred_at: String,
    /// An API key id, `operator`, `end_user` or `system`.
    pub actor: String,
    pub action: String,
    pub vault_id: Option<String>,
    pub connection_id: Option<String>,
    pub integration: Option<String>,
    pub method: Option<String>,
    pub host: Option<String>,
    /// Never includes a query string.
    pub path: Option<String>,
    pub status: Option<i64>,
    pub outcome: String,
    pub reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

/// A page of audit events, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"data": [{"id": "evt_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "seq": 1, "occurred_at": "2026-12-03T18:00:00Z", "actor": "key_01JDQ3W2ZK9V7T4S8N6M5R3P1B", "action": "vault.created", "vault_id": "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1C", "connection_id": null, "integration": null, "method": null, "host": null, "path": null, "status": null, "outcome": "success", "reason": null, "duration_ms": null, "prev_hash": "0000…", "hash": "41ab…"}], "next_cursor": "ZXZ0XzAxSkRRM1cyWks5VjdUNFM4TjZNNVIzUDFB"})))]
pub struct AuditList {
    pub data: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// Where a chain stops holding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"seq": 7, "event_id": "evt_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "reason": "content_changed"})))]
pub struct BrokenLink {
    /// Position in the chain (1 = first event).
    pub seq: i64,
    /// The event at that position; `null` when it is missing.
    pub event_id: Option<String>,
    /// `missing`, `content_changed`, `link_broken` or `tail_removed`.
    pub reason: String,
}

/// Answer of `GET /v1/audit/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"ok": true, "events": 42, "head": "41ab…", "first_broken": null})))]
pub struct AuditVerification {
    pub ok: bool,
    /// Events that verified.
    pub events: i64,
    /// Hash of the last verified event.
    pub head: String,
    pub first_broken: Option<BrokenLink>,
}

/// Answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"status": "ok", "checks": {"database": "ok", "master_key": "ok"}})))]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Per dependency: `ok` or `unavailable` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub checks: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `auth` of an integration: how users authorise and how we talk to the token endpoint.
// `Debug` is written by hand below: it leaves out `client_secret`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"type": "oauth2", "client_id": "Iv1.abc", "client_secret": "write-only", "scopes": ["repo", "read:user"]})))]
#[serde(deny_unknown_fields)]
pub struct IntegrationAuth {
    /// `oauth2` (default) or `api_key`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Write-only: accepted, sealed, never returned.
    #[serde(default, skip_serializing_if = "write_only")]
    #[cfg_attr(feature = "openapi", schema(write_only))]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    /// With only an issuer, a custom provider is configured by discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_separator: Option<String>,
    /// PKCE S256 (default on where the provider supports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<bool>,
    /// `client_secret_basic` or `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<String>,
    /// Dotted path of the access token in the token response, when not top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_path: Option<String>,
}

/// `api` of an integration: where the proxy may send requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"base_url": "https://api.github.com", "allowed_hosts": ["api.github.com"], "follow_redirects": false})))]
#[serde(deny_unknown_fields)]
pub struct IntegrationApi {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Exact host names, or `*.domain` for strict subdomains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Whether the proxy follows the upstream's redirects (at most 5 hops, each vetted and on
    /// `allowed_hosts`; the credential only on the base URL's origin) instead of passing them
    /// back. Default `false`; always present on read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = false))]
    pub follow_redirects: Option<bool>,
}

/// `inject` of an integration: how the proxy puts the credential on a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"style": "header", "name": "X-Api-Key"})))]
#[serde(deny_unknown_fields)]
pub struct IntegrationInject {
    /// `bearer`, `basic`, `header` or `query`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^(bearer|basic|header|query)$")
    )]
    pub style: String,
    /// The header or query parameter name, for `header` and `query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Body of `POST /v1/integrations`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "key": "github", "provider": "github",
    "auth": {"type": "oauth2", "client_id": "Iv1.abc", "client_secret": "write-only", "scopes": ["repo", "read:user"]},
    "api": {"base_url": "https://api.github.com", "allowed_hosts": ["api.github.com"]},
    "inject": {"style": "bearer"}
})))]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    /// 1 to 64 of `a-z 0-9 - _`, starting with a letter or digit; unique per partner.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 64,
            pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"
        )
    )]
    pub key: String,
    /// A template from `GET /v1/providers`, or `custom`.
    pub provider: String,
    #[serde(default)]
    pub auth: IntegrationAuth,
    #[serde(default)]
    pub api: IntegrationApi,
    #[serde(default)]
    pub inject: Option<IntegrationInject>,
}

/// Body of `PATCH /v1/integrations/{key}`: what may change after creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"auth": {"scopes": ["repo"]}, "api": {"allowed_hosts": ["api.github.com"], "follow_redirects": true}})))]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegration {
    #[serde(default)]
    pub auth: Option<UpdateIntegrationAuth>,
    #[serde(default)]
    pub api: Option<IntegrationApi>,
    #[serde(default)]
    pub inject: Option<IntegrationInject>,
}

/// The OAuth client fields `PATCH` may change. Endpoints are fixed once created.
// `Debug` is written by hand below: it leaves out `client_secret`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"client_id": "Iv1.def", "client_secret": "write-only", "scopes": ["repo"]})))]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegrationAuth {
    #[serde(default)]
    pub client_id: Option<String>,
    /// Write-only.
    #[serde(default, skip_serializing_if = "write_only")]
    #[cfg_attr(feature = "openapi", schema(write_only))]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// An integration, without secrets, with the callback URL to register at the provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"key": "github", "provider": "github", "auth": {"type": "oauth2", "client_id": "Iv1.abc", "scopes": ["repo", "read:user"]}, "api": {"base_url": "https://api.github.com", "allowed_hosts": ["api.github.com"], "follow_redirects": false}, "inject": {"style": "bearer"}, "redirect_uri": "https://connect.example.com/oauth/callback/ptn_01JDQ3W2ZK9V7T4S8N6M5R3P1D/github", "created_at": "2026-12-03T18:00:00Z"})))]
pub struct Integration {
    pub key: String,
    pub provider: String,
    pub auth: IntegrationAuth,
    pub api: IntegrationApi,
    pub inject: IntegrationInject,
    /// The exact redirect URI to register at the provider.
    pub redirect_uri: String,
    pub created_at: String,
}

/// The tenant's integrations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"data": [{"key": "openai", "provider": "custom", "auth": {"type": "api_key"}, "api": {"base_url": "https://api.openai.com", "allowed_hosts": ["api.openai.com"], "follow_redirects": false}, "inject": {"style": "bearer"}, "redirect_uri": "https://connect.example.com/oauth/callback/ptn_01JDQ3W2ZK9V7T4S8N6M5R3P1D/github", "created_at": "2026-12-03T18:00:00Z"}], "next_cursor": null})))]
pub struct IntegrationList {
    pub data: Vec<Integration>,
    pub next_cursor: Option<String>,
}

/// A built-in provider template.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"key": "github", "name": "GitHub", "authorization_url": "https://github.com/login/oauth/authorize", "token_url": "https://github.com/login/oauth/access_token", "revocation_url": null, "scope_separator": " ", "pkce": true, "token_auth": "client_secret_post", "default_scopes": ["read:user"], "api_base_url": "https://api.github.com", "allowed_hosts": ["api.github.com"]})))]
pub struct Provider {
    pub key: String,
    pub name: String,
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub scope_separator: String,
    pub pkce: bool,
    pub token_auth: String,
    pub default_scopes: Vec<String>,
    pub api_base_url: String,
    pub allowed_hosts: Vec<String>,
}

/// The provider catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"data": [{"key": "github", "name": "GitHub", "authorization_url": "https://github.com/login/oauth/authorize", "token_url": "https://github.com/login/oauth/access_token", "revocation_url": null, "scope_separator": " ", "pkce": true, "token_auth": "client_secret_post", "default_scopes": ["read:user"], "api_base_url": "https://api.github.com", "allowed_hosts": ["api.github.com"]}], "next_cursor": null})))]
pub struct ProviderList {
    pub data: Vec<Provider>,
    pub next_cursor: Option<String>,
}

/// Partner settings (`GET`/`PUT /v1/settings`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"allowed_return_urls": ["https://app.example.com/connected"]})))]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Exact URLs a connect session may return the user to.
    pub allowed_return_urls: Vec<String>,
}

/// Body of `POST /v1/vaults/{vault_id}/connect-sessions`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"integration": "github", "return_url": "https://app.example.com/connected"})))]
#[serde(deny_unknown_fields)]
pub struct CreateConnectSession {
    pub integration: String,
    /// Must equal one of the partner's allowed return URLs.
    #[serde(default)]
    pub return_url: Option<String>,
}

/// A connect session. Give `url` to the end user; it is single use and expires.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"id": "cs_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "url": "https://connect.example.com/connect/Zk9V7T4S8N6M5R3P1A", "expires_at": "2026-12-03T18:30:00Z"})))]
pub struct ConnectSession {
    pub id: String,
    pub url: String,
    pub expires_at: String,
}

/// Body of `POST /v1/vaults/{vault_id}/connections`: a write-only API-key deposit.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"integration": "openai", "api_key": "write-only"})))]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// An integration whose `auth.type` is `api_key`.
    pub integration: String,
    /// Write-only: sealed into the vault, never returned.
    pub api_key: String,
}

impl std::fmt::Debug for CreateConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateConnection")
            .field("integration", &self.integration)
            .finish_non_exhaustive()
    }
}

/// A connection's metadata. Never a value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "con_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "vault_id": "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1B", "integration": "github",
    "status": "active", "scopes": ["repo"], "expires_at": "2026-12-03T19:00:00Z",
    "created_at": "2026-12-03T18:00:00Z", "last_used_at": null
})))]
pub struct Connection {
    pub id: String,
    pub vault_id: String,
    pub integration: String,
    /// `active`, `reauth_required` or `revoked`.
    pub status: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// A page of connections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"data": [{"id": "con_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "vault_id": "vlt_01JDQ3W2ZK9V7T4S8N6M5R3P1B", "integration": "github", "status": "active", "scopes": ["repo"], "expires_at": "2026-12-03T19:00:00Z", "created_at": "2026-12-03T18:00:00Z", "last_used_at": null}], "next_cursor": null})))]
pub struct ConnectionList {
    pub data: Vec<Connection>,
    pub next_cursor: Option<String>,
}

/// Answer of `DELETE /v1/vaults/{vault_id}/connections/{connection_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"id": "con_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "status": "revoked", "upstream_revocation": "revoked"})))]
pub struct ConnectionDeleted {
    pub id: String,
    pub status: String,
    /// `revoked`, `failed` or `not_supported`.
    pub upstream_revocation: String,
}

impl std::fmt::Debug for IntegrationAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationAuth")
            .field("auth_type", &self.auth_type)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for UpdateIntegrationAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateIntegrationAuth")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_write_only_secret() {
        let auth = IntegrationAuth {
            client_secret: Some("s3cret-value".into()),
            ..Default::default()
        };
        let update = UpdateIntegrationAuth {
            client_secret: Some("s3cret-value".into()),
            ..Default::default()
        };
        let deposit = CreateConnection {
            integration: "openai".into(),
            api_key: "s3cret-value".into(),
        };
        for shown in [
            format!("{auth:?}"),
            format!("{update:?}"),
            format!("{deposit:?}"),
        ] {
            assert!(!shown.contains("s3cret-value"), "{shown}");
        }
    }
}
