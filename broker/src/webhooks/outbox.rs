//! The transactional outbox: one delivery row per subscribed endpoint, written by the audit
//! append that records the change, inside the transaction that makes the change.
//!
//! Every change a webhook reports is already recorded in the audit log in its own
//! transaction, so enqueueing there means an event is delivered if and only if the change
//! committed: a rollback takes its delivery rows with it, and a crash after the commit leaves
//! them for the worker of whichever replica runs next. The audit event's id (`evt_…`) is the
//! message id, so a partner can match a webhook to the audit log.
//!
//! The payload carries ids, the integration key, a status and a reason code; never a value.

use sqlx::AnyConnection;

use super::EVENT_TYPES;
use crate::audit::Event;
use crate::clock;
use crate::error::Error;

/// The connection or vault status an event leaves behind.
fn status_after(event_type: &str) -> &'static str {
    match event_type {
        "connection.created" | "connection.refreshed" => "active",
        "connection.reauth_required" => "reauth_required",
        _ => "revoked",
    }
}

/// The JSON body sent for `event` (Standard Webhooks' `type`/`timestamp`/`data` shape).
pub fn payload(partner_id: &str, event: &Event) -> serde_json::Value {
    let mut data = serde_json::Map::new();
    data.insert("partner_id".into(), partner_id.into());
    data.insert("vault_id".into(), event.vault_id.clone().into());
    if event.action.starts_with("connection.") {
        data.insert("connection_id".into(), event.connection_id.clone().into());
        data.insert("integration".into(), event.integration.clone().into());
    }
    data.insert("status".into(), status_after(&event.action).into());
    if let Some(reason) = &event.reason {
        data.insert("reason".into(), reason.clone().into());
    }
    serde_json::json!({
        "id": event.id,
        "type": event.action,
        "timestamp": clock::to_rfc3339(event.occurred_at),
        "data": data,
    })
}

/// Writes one pending delivery per active endpoint of `partner_id` subscribed to the event's
/// type, inside the caller's transaction. Other audit actions are left alone at no cost.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    partner_id: &str,
    event: &Event,
) -> Result<(), Error> {
    if !EVENT_TYPES.contains(&event.action.as_str()) {
        return Ok(());
    }
    let endpoints: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, events FROM webhooks WHERE partner_id = $1 AND status = 'active' ORDER BY id",
    )
    .bind(partner_id)
    .fetch_all(&mut *conn)
    .await?;
    let subscribed: Vec<&str> = endpoints
        .iter()
        .filter(|(_, events)| events.split_whitespace().any(|e| e == event.action))
        .map(|(id, _)| id.as_str())
        .collect();
    if subscribed.is_empty() {
        return Ok(());
    }
    let body = payload(partner_id, event).to_string();
    for webhook_id in subscribed {
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, partner_id, event_type, payload, status,
                 attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(webhook_id)
        .bind(&event.id)
        .bind(partner_id)
        .bind(&event.action)
        .bind(&body)
        .bind(event.occurred_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_ids_and_statuses_only() {
        let event = Event {
            id: "evt_01JDQ3W2ZK9V7T4S8N6M5R3P1A".into(),
            seq: 4,
            occurred_at: 1_500,
            actor: "key_x".into(),
            action: "connection.revoked".into(),
            vault_id: Some("vlt_a".into()),
            connection_id: Some("con_b".into()),
            integration: Some("github".into()),
            method: Some("GET".into()),
            host: Some("api.github.com".into()),
            path: Some("/user".into()),
            status: Some(200),
            outcome: "success".into(),
            reason: Some("vault_deleted".into()),
            duration_ms: None,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let body = payload("ptn_p", &event);
        assert_eq!(
            body,
            serde_json::json!({
                "id": "evt_01JDQ3W2ZK9V7T4S8N6M5R3P1A",
                "type": "connection.revoked",
                "timestamp": "1970-01-01T00:00:01.5Z",
                "data": {"partner_id": "ptn_p", "vault_id": "vlt_a", "connection_id": "con_b",
                    "integration": "github", "status": "revoked", "reason": "vault_deleted"}
            })
        );
    }
}
