-- Master-key rotation: the master key version each running replica wraps new vault keys with,
-- so that a rotation rewraps nothing until every live replica holds the new version, and a
-- version is retired only once no replica still uses it for new vaults. NULL until the
-- replica has reported (a row re-inserted by its heartbeat starts without it).
ALTER TABLE replicas ADD COLUMN master_key_version BIGINT;
