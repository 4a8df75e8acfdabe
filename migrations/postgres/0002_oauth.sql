-- Integrations (a partner's configuration of one provider), allowed return URLs, connect
-- sessions (the end user's consent flow) and the refresh lease on connections.

CREATE TABLE integrations (
    partner_id            TEXT NOT NULL REFERENCES partners (id),
    integration_key       TEXT NOT NULL,
    provider              TEXT NOT NULL,
    auth_type             TEXT NOT NULL CHECK (auth_type IN ('oauth2', 'api_key')),
    -- Resolved OAuth settings (endpoints, scopes, PKCE, client id, ...) as JSON; no secrets.
    oauth                 TEXT NOT NULL,
    -- The client secret sealed to the master key; NULL for api_key integrations.
    client_secret_sealed  BYTEA,
    master_key_version    BIGINT,
    api_base_url          TEXT NOT NULL,
    allowed_hosts         TEXT NOT NULL,
    inject                TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (partner_id, integration_key)
);

CREATE TABLE partner_settings (
    partner_id           TEXT PRIMARY KEY REFERENCES partners (id),
    allowed_return_urls  TEXT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE connect_sessions (
    id                    TEXT PRIMARY KEY,
    partner_id            TEXT NOT NULL REFERENCES partners (id),
    vault_id              TEXT NOT NULL REFERENCES vaults (id),
    integration_key       TEXT NOT NULL,
    -- SHA-256 of the bearer token in the connect URL.
    token_hash            TEXT NOT NULL UNIQUE,
    return_url            TEXT,
    status                TEXT NOT NULL
        CHECK (status IN ('pending', 'started', 'exchanging', 'completed', 'failed')),
    -- Set when the browser is sent to the provider: SHA-256 of `state` and of the browser
    -- binding cookie, and the PKCE verifier sealed to the master key.
    state_hash            TEXT UNIQUE,
    browser_hash          TEXT,
    verifier_sealed       BYTEA,
    master_key_version    BIGINT,
    error_code            TEXT,
    connection_id         TEXT,
    expires_at            BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX connect_sessions_vault ON connect_sessions (vault_id);

ALTER TABLE connections ADD COLUMN refresh_lease_until BIGINT;
ALTER TABLE connections ADD COLUMN refresh_lease_owner TEXT;
ALTER TABLE connections ADD COLUMN refresh_retry_at BIGINT;
ALTER TABLE connections ADD COLUMN refresh_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN upstream_revocation TEXT;
