-- Whether the proxy follows an upstream's redirects for this integration (1) or passes them back
-- to the caller (0, the default). Followed hops are vetted like the first target, and the
-- credential goes only to the first target's origin.
ALTER TABLE integrations ADD COLUMN follow_redirects BIGINT NOT NULL DEFAULT 0 CHECK (follow_redirects IN (0, 1));
