-- headway cache: the SQLite L2 store (the embedded default; WAL mode, shared by every
-- process on the machine that opens the same file). Run once per engine, idempotent.
--
-- headway_cache       one row per entry; value is the codec's bytes (or an incr counter
--                     as ASCII digits); expires_at is wall-clock seconds since the epoch.
--                     Expired rows read as absent and are purged every few hundred writes.
-- headway_cache_tags  (tag key, entry key) memberships, so that a tag invalidation is one
--                     indexed DELETE instead of a table scan.

CREATE TABLE IF NOT EXISTS headway_cache (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS headway_cache_expires ON headway_cache (expires_at);

CREATE TABLE IF NOT EXISTS headway_cache_tags (
    tag        TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (tag, key)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS headway_cache_tags_expires ON headway_cache_tags (expires_at);
