-- Webhook endpoints and the transactional outbox of their deliveries.

-- An endpoint a partner registered. The signing secret is sealed to the master key (like an
-- integration's client secret) and shown to the partner only when created. `events` is the
-- space-separated list of subscribed event types. `status` is `active` or `disabled` (the
-- retry schedule ran out); deleting an endpoint removes the row and its deliveries.
CREATE TABLE webhooks (
    id                  TEXT PRIMARY KEY,
    partner_id          TEXT NOT NULL REFERENCES partners(id),
    url                 TEXT NOT NULL,
    events              TEXT NOT NULL,
    secret_sealed       BYTEA NOT NULL,
    master_key_version  BIGINT NOT NULL,
    status              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    disabled_at         BIGINT
);
CREATE INDEX webhooks_by_partner ON webhooks (partner_id, status);

-- The outbox: one row per (subscribed endpoint, event), written in the same transaction as
-- the change the event reports (by the audit append that records it). `event_id` is the audit
-- event's id; it is the message id sent as `webhook-id` on every attempt. `payload` is the
-- exact body, fixed when the event happened, so every retry sends the same bytes.
-- `status`: `pending`, `delivered` or `failed` (gave up). A worker claims a due row by setting
-- `lease_until`; another replica takes it only once that lease has passed.
CREATE TABLE webhook_deliveries (
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    partner_id       TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    lease_owner      TEXT,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
