//! `/v1/webhooks`: endpoints that hear about lifecycle changes. Needs the `admin` scope.

use actix_web::{HttpResponse, delete as http_delete, get as http_get, post as http_post, web};
use connect_broker::auth::Scope;
use connect_broker::idempotency::Idempotency;
use connect_broker::ids::Kind;
use connect_broker::pagination::PageRequest;
use connect_broker::secret::ExposeSecret;
use connect_broker::webhooks::{self, Created};
use connect_sdk::types::{
    CreateWebhook, CreatedWebhook, DeliveryStatus, Problem, Webhook, WebhookDelivery,
    WebhookDeliveryList, WebhookEventType, WebhookList, WebhookStatus,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, JsonBody, Query};
use crate::state::AppState;

/// Query of the webhook lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListPage {
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Register a webhook endpoint.
///
/// The URL must be https on a public address (unless the operator allows private upstreams);
/// it is vetted now and again before every delivery. The signing secret is in the answer once
/// and never again. Deliveries are signed the Standard Webhooks way (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), retried with backoff
/// for about a day, and the endpoint is disabled when every retry of an event failed.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = CreateWebhook,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]([ -~]*[!-~])?$", description = "A repeat answers 409 naming the endpoint: its secret is not shown twice")),
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = CreatedWebhook),
        (status = 400, description = "Malformed JSON, unknown field or unknown event type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already created by an earlier request with this Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The URL is refused (scheme, private address) or no event is named", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_post("/webhooks")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    idem: IdempotencyKey,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let events: Vec<&str> = body.events.iter().map(|e| e.as_str()).collect();
    let idem = match idem.0 {
        Some(key) => Some(Idempotency::new(
            &key,
            "webhooks.create",
            &serde_json::to_value(&body).unwrap_or_default(),
        )?),
        None => None,
    };

    let created = webhooks::create(
        &state.db,
        &state.keys.current(),
        &state.resolver,
        &tenant,
        &body.url,
        &events,
        idem.as_ref(),
    )
    .await?;

    match created {
        Created::New { webhook, secret } => Ok(HttpResponse::Created()
            .insert_header(("Cache-Control", "no-store"))
            .json(CreatedWebhook {
                webhook: to_wire(webhook),
                secret: secret.expose_secret().to_owned(),
            })),
        Created::Replayed { webhook_id } => {
            Err(ApiError::WebhookSecretNotReplayable { webhook_id })
        }
    }
}

/// List webhook endpoints.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    params(ListPage),
    responses(
        (status = 200, description = "A page of endpoints (no secrets)", body = WebhookList),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_get("/webhooks")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    Query(query): Query<ListPage>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let page = PageRequest::new(Kind::Webhook, query.limit, query.cursor.as_deref())?;

    let page = webhooks::list(&state.db, &tenant, &page).await?;

    Ok(HttpResponse::Ok().json(WebhookList {
        data: page.data.into_iter().map(to_wire).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Get a webhook endpoint (without its secret).
#[utoipa::path(
    get, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "get_webhook",
    params(("webhook_id" = String, Path, description = "The endpoint's id (`whk_…`)")),
    responses(
        (status = 200, description = "The endpoint; `status` is `disabled` once retries ran out", body = Webhook),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint (or another partner's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_get("/webhooks/{webhook_id}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let webhook = webhooks::get(&state.db, &tenant, &path).await?;

    Ok(HttpResponse::Ok().json(to_wire(webhook)))
}

/// Delete a webhook endpoint, its secret and its pending deliveries.
#[utoipa::path(
    delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("webhook_id" = String, Path, description = "The endpoint's id (`whk_…`)")),
    responses(
        (status = 200, description = "Deleted; the endpoint as it was, with status `deleted`", body = Webhook),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint (or another partner's)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_delete("/webhooks/{webhook_id}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let webhook = webhooks::delete(&state.db, &tenant, &path).await?;

    Ok(HttpResponse::Ok().json(to_wire(webhook)))
}

/// List an endpoint's deliveries: one per event, with its attempts and last outcome.
#[utoipa::path(
    get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(("webhook_id" = String, Path, description = "The endpoint's id (`whk_…`)"), ListPage),
    responses(
        (status = 200, description = "A page of deliveries, oldest event first", body = WebhookDeliveryList),
        (status = 400, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint (or another partner's)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_get("/webhooks/{webhook_id}/deliveries")]
pub async fn deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    Query(query): Query<ListPage>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let page = PageRequest::new(Kind::Event, query.limit, query.cursor.as_deref())?;

    let page = webhooks::deliveries(&state.db, &tenant, &path, &page).await?;

    Ok(HttpResponse::Ok().json(WebhookDeliveryList {
        data: page.data.into_iter().map(delivery_to_wire).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn to_wire(webhook: webhooks::Webhook) -> Webhook {
    Webhook {
        events: webhook
            .event_list()
            .into_iter()
            .filter_map(WebhookEventType::parse)
            .collect(),
        status: match webhook.status.as_str() {
            "active" => WebhookStatus::Active,
            "deleted" => WebhookStatus::Deleted,
            _ => WebhookStatus::Disabled,
        },
        created_at: super::time(webhook.created_at),
        disabled_at: webhook.disabled_at.map(super::time),
        id: webhook.id,
        url: webhook.url,
    }
}

fn delivery_to_wire(delivery: webhooks::Delivery) -> WebhookDelivery {
    let status = match delivery.status.as_str() {
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        _ => DeliveryStatus::Pending,
    };
    WebhookDelivery {
        next_attempt_at: (status == DeliveryStatus::Pending)
            .then(|| super::time(delivery.next_attempt_at)),
        status,
        last_status_code: delivery
            .last_status
            .and_then(|code| u16::try_from(code).ok()),
        last_error: delivery.last_error,
        attempts: delivery.attempts,
        created_at: super::time(delivery.created_at),
        delivered_at: delivery.delivered_at.map(super::time),
        event_id: delivery.event_id,
        event_type: delivery.event_type,
    }
}
