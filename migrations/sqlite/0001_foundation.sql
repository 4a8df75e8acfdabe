-- Partners, API keys, master-key registry, vaults, connections, idempotency and the audit log.
-- Times are epoch milliseconds. No column holds a credential in clear: secrets exist only as
-- age ciphertext (`sealed`, `wrapped_key`) or as a one-way hash (`key_hash`).

CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- Head of this partner's audit hash chain; updated in the same transaction as each append,
    -- which also serialises appends per partner.
    audit_seq   BIGINT NOT NULL DEFAULT 0,
    audit_head  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    name          TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    key_prefix    TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_partner ON api_keys (partner_id, id);

-- Public halves of the master key versions, to detect a wrong or missing master key at start.
CREATE TABLE master_keys (
    version     BIGINT PRIMARY KEY,
    recipient   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

CREATE TABLE vaults (
    id                  TEXT PRIMARY KEY,
    partner_id          TEXT NOT NULL REFERENCES partners (id),
    external_user_id    TEXT NOT NULL,
    metadata            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    recipient           TEXT NOT NULL,
    wrapped_key         BLOB,
    master_key_version  BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    revoked_at          BIGINT
);
CREATE UNIQUE INDEX vaults_partner_external_active
    ON vaults (partner_id, external_user_id) WHERE status = 'active';
CREATE INDEX vaults_partner ON vaults (partner_id, id);
CREATE INDEX vaults_master_key_version ON vaults (master_key_version);

CREATE TABLE connections (
    id            TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    vault_id      TEXT NOT NULL REFERENCES vaults (id),
    integration   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'reauth_required', 'revoked')),
    sealed        BLOB,
    seal_version  BIGINT NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '',
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX connections_vault ON connections (vault_id, id);
CREATE INDEX connections_partner ON connections (partner_id, id);

CREATE TABLE idempotency_keys (
    partner_id    TEXT NOT NULL REFERENCES partners (id),
    idem_key      TEXT NOT NULL,
    operation     TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (partner_id, idem_key)
);

CREATE TABLE audit_events (
    id             TEXT PRIMARY KEY,
    partner_id     TEXT NOT NULL REFERENCES partners (id),
    seq            BIGINT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    vault_id       TEXT,
    connection_id  TEXT,
    integration    TEXT,
    method         TEXT,
    host           TEXT,
    path           TEXT,
    status         BIGINT,
    outcome        TEXT NOT NULL,
    reason         TEXT,
    duration_ms    BIGINT,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    UNIQUE (partner_id, seq)
);
CREATE INDEX audit_events_vault ON audit_events (partner_id, vault_id, seq);
CREATE INDEX audit_events_connection ON audit_events (partner_id, connection_id, seq);

-- Append-only: the service never updates or deletes an audit row. (Someone with direct write
-- access can drop these triggers; the hash chain is what detects that.)
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
