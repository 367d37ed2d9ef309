-- headway job store, SQLite flavour. Applied at open(); every statement is idempotent.
--
-- hw_jobs: one row per job, keyed by (queue, id). `data` is the JSON payload written at
-- enqueue and never changed; the other columns are the job's lifecycle. Ready jobs are
-- claimed in (priority DESC, run_at) order through hw_jobs_claim; run_at is when the job
-- became due, so retried and delayed jobs queue behind those already waiting.
-- `tenant` ('' = none): claims take turns between tenants. `unique_key` + `unique_until`:
-- a unique job's slot. `cancel`: a cancel request for a running job.
-- hw_job_queues: every queue seen, and whether it is paused.
-- Columns added after the first release are added by the backend (ALTER TABLE) when an
-- older file lacks them: see SQLiteJobBackend._upgrade.
CREATE TABLE IF NOT EXISTS hw_jobs (
    queue            TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    data             BLOB    NOT NULL,
    state            TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 1,
    enqueued_at      REAL    NOT NULL,
    run_at           REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    worker           TEXT,
    lease_until      REAL,
    progress         INTEGER NOT NULL DEFAULT 0,
    progress_message TEXT,
    result           BLOB,
    error            TEXT,
    traceback        TEXT,
    tenant           TEXT    NOT NULL DEFAULT '',
    unique_key       TEXT,
    unique_until     REAL,
    cancel           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, id)
);
CREATE INDEX IF NOT EXISTS hw_jobs_claim ON hw_jobs (queue, state, priority DESC, run_at);
CREATE INDEX IF NOT EXISTS hw_jobs_due ON hw_jobs (queue, state, run_at);
CREATE INDEX IF NOT EXISTS hw_jobs_done ON hw_jobs (queue, state, finished_at);
CREATE INDEX IF NOT EXISTS hw_jobs_id ON hw_jobs (id);
-- hw_job_starts: job starts of rate-limited queues, counted over the limit's period.
CREATE TABLE IF NOT EXISTS hw_job_starts (
    queue  TEXT NOT NULL,
    tenant TEXT NOT NULL,
    at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS hw_job_starts_at ON hw_job_starts (queue, at);
CREATE TABLE IF NOT EXISTS hw_job_queues (
    name   TEXT    PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);
