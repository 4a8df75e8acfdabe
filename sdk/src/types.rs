//! Request and response bodies of the v1 API.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

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
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

/// What an API key may do. `admin` implies every other scope.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
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
    pub name: String,
    /// At least one; only scopes the calling key holds (an `admin` key may grant any).
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
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The key. Store it now: it is never shown again.
    pub api_key: String,
}

/// A page of API keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
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
pub struct AuditList {
    pub data: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// Where a chain stops holding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
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
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Per dependency: `ok` or `unavailable` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub checks: Option<serde_json::Map<String, serde_json::Value>>,
}
