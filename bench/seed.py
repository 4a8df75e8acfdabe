"""Fills the bench database with vaults, each with one API-key connection, straight into the
tables while the broker is stopped (creating a million through the API would take hours).

    python3 bench/seed.py sqlite PATH PARTNER_ID TOTAL
    python3 bench/seed.py postgres URL PARTNER_ID TOTAL

adds vaults until the database holds TOTAL vaults. Every row has the columns the service
writes when it creates a vault (`broker/src/vaults.rs`) and deposits an API key
(`broker/src/credentials.rs`), with ids in its format (`broker/src/ids.rs`: a prefix and a
ULID). The key material is copied from the partner's vaults that the API created (the
templates, taken in turn): `recipient`, `wrapped_key` and `sealed` have the sizes real ones
have, but they are bound to the template's ids, so a seeded vault's key or credential does not
open. Only the connection the bench measures has to, and that one the API created.

Seeded vaults are named `seed-NNNNNNNNN` (their external user ids) and dated one millisecond
apart, starting a day before the run, so their ids are unique and sort before the API's. The
ids are made here for both backends (PostgreSQL has no base-32 encoder, and building them in
SQL took longer than inserting the rows). SQLite is written with python's sqlite3 module;
PostgreSQL through one `psql` session that COPYs the ids into a temporary table, builds the
rows from it and the templates in two INSERT ... SELECTs (skipping the foreign-key triggers
when the role may: the rows satisfy them by construction), then runs VACUUM ANALYZE on both
tables, as autovacuum would after a load like this. Both then write everything out (WAL
checkpoint, sync) so that the measurement does not share the disk with the load. No audit
events are written for seeded rows (they would need a hash chain of their own), so the audit
table holds only what the API and the bench itself caused.

Prints the number of vaults in the database, how many of them are seeded, and the seconds the
seeding took.
"""

import base64
import itertools
import os
import re
import sqlite3
import subprocess
import sys
import time

BATCH = 20_000
# Base 32 as the standard library writes it, and as ULIDs are written (Crockford's).
TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                               b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def ulid(ts_ms: int) -> str:
    """A ULID: 48 bits of milliseconds, then 80 random bits, in Crockford's base 32. Encodes
    160 bits (32 characters) whose first 32 are zero and keeps the last 26 characters."""
    raw = ts_ms.to_bytes(10, "big") + os.urandom(10)
    return base64.b32encode(raw).translate(TO_CROCKFORD)[6:].decode()


def rows(start: int, end: int):
    """Seeded vault number n: (n, created_at, vault id, connection id, external user id)."""
    base = int(time.time() * 1000) - 86_400_000
    for n in range(start, end):
        ts = base + n
        yield n, ts, "vlt_" + ulid(ts), "con_" + ulid(ts), f"seed-{n:09d}"


def seed_sqlite(path: str, partner_id: str, total: int) -> tuple[int, int]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    (have,) = db.execute("SELECT count(*) FROM vaults").fetchone()
    (seeded,) = db.execute(
        "SELECT count(*) FROM vaults WHERE external_user_id LIKE 'seed-%'"
    ).fetchone()
    templates = db.execute(
        """SELECT v.metadata, v.recipient, v.wrapped_key, v.master_key_version,
                  c.integration, c.sealed, c.seal_version, c.scopes
           FROM vaults v JOIN connections c ON c.vault_id = v.id
           WHERE v.partner_id = ? AND v.status = 'active' AND c.status = 'active'
             AND v.external_user_id NOT LIKE 'seed-%' ORDER BY v.id""",
        (partner_id,),
    ).fetchall()
    if not templates:
        sys.exit("seed.py: the partner has no vault with an active connection to copy")
    start, end = seeded, seeded + max(total - have, 0)
    generated = rows(start, end)
    while batch := list(itertools.islice(generated, BATCH)):
        vaults, connections = [], []
        for n, ts, vault_id, connection_id, external in batch:
            meta, recipient, wrapped, mk_version, integration, sealed, seal_version, scopes = (
                templates[n % len(templates)]
            )
            vaults.append((vault_id, partner_id, external, meta, recipient, wrapped, mk_version,
                           ts, ts))
            connections.append((connection_id, partner_id, vault_id, integration, sealed,
                                seal_version, scopes, ts, ts))
        db.execute("BEGIN")
        db.executemany(
            """INSERT INTO vaults (id, partner_id, external_user_id, metadata, status, recipient,
                   wrapped_key, master_key_version, created_at, updated_at)
               VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)""",
            vaults,
        )
        db.executemany(
            """INSERT INTO connections (id, partner_id, vault_id, integration, status, sealed,
                   seal_version, scopes, expires_at, created_at, updated_at)
               VALUES (?, ?, ?, ?, 'active', ?, ?, ?, NULL, ?, ?)""",
            connections,
        )
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (now,) = db.execute("SELECT count(*) FROM vaults").fetchone()
    db.close()
    os.sync()
    return now, end


def psql(url: str, sql: str, *flags: str, check: bool = True) -> str:
    done = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *flags, "-d", url],
        input=sql, capture_output=True, text=True,
    )
    if done.returncode != 0 and check:
        sys.exit(f"seed.py: psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


POSTGRES_LOAD = """
BEGIN;
-- Foreign keys hold by construction; skip their per-row checks where this role may.
DO $$ BEGIN
    PERFORM set_config('session_replication_role', 'replica', true);
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
CREATE TEMP TABLE seed_templates ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY v.id) - 1 AS i, v.metadata, v.recipient, v.wrapped_key,
           v.master_key_version, c.integration, c.sealed, c.seal_version, c.scopes
    FROM vaults v JOIN connections c ON c.vault_id = v.id
    WHERE v.partner_id = :'partner' AND v.status = 'active' AND c.status = 'active'
      AND v.external_user_id NOT LIKE 'seed-%';
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM seed_templates) THEN
        RAISE 'the partner has no vault with an active connection to copy';
    END IF;
END $$;
CREATE TEMP TABLE seed_ids (n bigint, ts bigint, vault_id text, connection_id text)
    ON COMMIT DROP;
COPY seed_ids FROM STDIN;
{ids}\\.
CREATE TEMP TABLE seed_rows ON COMMIT DROP AS
    SELECT r.n, r.ts, r.vault_id, r.connection_id, t.*
    FROM seed_ids r
    JOIN seed_templates t ON t.i = r.n % (SELECT count(*) FROM seed_templates);
INSERT INTO vaults (id, partner_id, external_user_id, metadata, status, recipient, wrapped_key,
        master_key_version, created_at, updated_at)
    SELECT vault_id, :'partner', 'seed-' || lpad(n::text, 9, '0'), metadata, 'active', recipient,
           wrapped_key, master_key_version, ts, ts
    FROM seed_rows ORDER BY n;
INSERT INTO connections (id, partner_id, vault_id, integration, status, sealed, seal_version,
        scopes, expires_at, created_at, updated_at)
    SELECT connection_id, :'partner', vault_id, integration, 'active', sealed, seal_version,
           scopes, NULL, ts, ts
    FROM seed_rows ORDER BY n;
COMMIT;
VACUUM ANALYZE vaults;
VACUUM ANALYZE connections;
"""


def seed_postgres(url: str, partner_id: str, total: int) -> tuple[int, int]:
    counts = psql(url, "SELECT count(*), count(*) FILTER (WHERE external_user_id LIKE 'seed-%')"
                       " FROM vaults", "-At", "-F", " ")
    have, seeded = (int(c) for c in counts.split())
    start, end = seeded, seeded + max(total - have, 0)
    if end > start:
        ids = "".join(f"{n}\t{ts}\t{vault_id}\t{connection_id}\n"
                      for n, ts, vault_id, connection_id, _ in rows(start, end))
        before, after = POSTGRES_LOAD.split("{ids}")
        psql(url, before + ids + after, "-v", f"partner={partner_id}")
        # Write the load out now rather than during the measurement. CHECKPOINT needs a
        # privileged role (without one this is left to the server); the sync reaches only the
        # disks of this machine.
        psql(url, "CHECKPOINT", check=False)
        os.sync()
    return int(psql(url, "SELECT count(*) FROM vaults", "-At")), end


def main() -> None:
    if len(sys.argv) != 5 or sys.argv[1] not in ("sqlite", "postgres"):
        sys.exit(__doc__.split("\n\n")[1])
    backend, target, partner_id, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if not re.fullmatch(r"ptn_[0-9A-HJKMNP-TV-Z]{26}", partner_id):
        sys.exit(f"seed.py: {partner_id!r} is not a partner id")
    started = time.monotonic()
    seed = seed_sqlite if backend == "sqlite" else seed_postgres
    vaults, seeded = seed(target, partner_id, total)
    print(f"{vaults} {seeded} {time.monotonic() - started:.1f}")


if __name__ == "__main__":
    main()
