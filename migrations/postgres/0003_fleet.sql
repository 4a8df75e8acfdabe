-- Replicas sharing this store, and the revision that keeps what they hold in memory honest.

-- One row. Every change that must end the use of something a replica may have cached (a
-- revoked connection, vault or API key, a suspended partner, a changed integration) adds one
-- to it, as the last write of its transaction; the row lock orders those changes by commit.
CREATE TABLE store_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  BIGINT NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);

-- The connections revoked at each revision: every running replica waits for its own requests
-- still using them before it acknowledges that revision.
CREATE TABLE revision_revocations (
    revision       BIGINT NOT NULL,
    connection_id  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (revision, connection_id)
);

-- Running replicas: when each last reached the store, and the highest revision it has
-- acknowledged. A row whose heartbeat is older than the lease belongs to a replica that has
-- stopped forwarding.
CREATE TABLE replicas (
    id              TEXT PRIMARY KEY,
    started_at      BIGINT NOT NULL,
    heartbeat_at    BIGINT NOT NULL,
    acked_revision  BIGINT NOT NULL
);
