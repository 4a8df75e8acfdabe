//! Request and response bodies of `/v1/webhooks`, and the body of a webhook itself.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A lifecycle change an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum WebhookEventType {
    #[serde(rename = "connection.created")]
    ConnectionCreated,
    #[serde(rename = "connection.refreshed")]
    ConnectionRefreshed,
    #[serde(rename = "connection.reauth_required")]
    ConnectionReauthRequired,
    #[serde(rename = "connection.revoked")]
    ConnectionRevoked,
    #[serde(rename = "vault.revoked")]
    VaultRevoked,
}

impl WebhookEventType {
    /// The wire name, e.g. `connection.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::ConnectionCreated => "connection.created",
            WebhookEventType::ConnectionRefreshed => "connection.refreshed",
            WebhookEventType::ConnectionReauthRequired => "connection.reauth_required",
            WebhookEventType::ConnectionRevoked => "connection.revoked",
            WebhookEventType::VaultRevoked => "vault.revoked",
        }
    }

    /// Every event type.
    pub const ALL: [WebhookEventType; 5] = [
        WebhookEventType::ConnectionCreated,
        WebhookEventType::ConnectionRefreshed,
        WebhookEventType::ConnectionReauthRequired,
        WebhookEventType::ConnectionRevoked,
        WebhookEventType::VaultRevoked,
    ];

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<WebhookEventType> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "url": "https://hooks.example.com/agentsecrets",
    "events": ["connection.created", "connection.revoked", "vault.revoked"]
})))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An https URL on a public address (at most 2048 characters).
    pub url: String,
    /// At least one event type; unknown names are refused.
    pub events: Vec<WebhookEventType>,
}

/// Whether an endpoint receives events.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    /// Every retry of an event failed; nothing more is sent.
    Disabled,
    /// Only in the answer to `DELETE`.
    Deleted,
}

/// A registered endpoint; its signing secret is shown only when created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "whk_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "url": "https://hooks.example.com/agentsecrets",
    "events": ["connection.created", "vault.revoked"], "status": "active",
    "created_at": "2026-12-03T18:00:00Z", "disabled_at": null
})))]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEventType>,
    pub status: WebhookStatus,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

/// Answer of `POST /v1/webhooks`: the endpoint and, this once, its signing secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "whk_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "url": "https://hooks.example.com/agentsecrets",
    "events": ["connection.created"], "status": "active",
    "created_at": "2026-12-03T18:00:00Z", "disabled_at": null,
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
})))]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret (`whsec_<base64>`). Store it now: it is never shown again.
    pub secret: String,
}

/// A page of endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WebhookList {
    pub data: Vec<Webhook>,
    pub next_cursor: Option<String>,
}

/// Where one event's delivery to one endpoint stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Every attempt failed.
    Failed,
}

/// One event's delivery to one endpoint: every attempt used the same `webhook-id` (the event id).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "event_id": "evt_01JDQ3W2ZK9V7T4S8N6M5R3P1A", "event_type": "connection.created",
    "status": "delivered", "attempts": 2, "last_status_code": 200, "last_error": null,
    "next_attempt_at": null, "created_at": "2026-12-03T18:00:00Z",
    "delivered_at": "2026-12-03T18:00:05Z"
})))]
pub struct WebhookDelivery {
    /// The audit event's id, sent as `webhook-id` and as the body's `id`.
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The HTTP status of the last answer, when there was one.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed: `http_status`, `timeout`, `connect_failed`,
    /// `address_refused`, `url_refused` or `transport_error`.
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WebhookDeliveryList {
    pub data: Vec<WebhookDelivery>,
    pub next_cursor: Option<String>,
}

/// The JSON body of a webhook (what a receiver gets). Ids and statuses only, never a value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WebhookPayload {
    /// The event id (`evt_…`), equal to the `webhook-id` header and to the audit event's id.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: WebhookEventType,
    /// When the change happened (RFC 3339).
    pub timestamp: String,
    pub data: WebhookEventData,
}

/// What changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WebhookEventData {
    pub partner_id: String,
    pub vault_id: Option<String>,
    /// For `connection.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The integration key, for `connection.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// The connection's or vault's status after the change.
    pub status: String,
    /// A reason code, e.g. `vault_deleted` or `invalid_grant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
