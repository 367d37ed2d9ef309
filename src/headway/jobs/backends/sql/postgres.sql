-- headway job store, PostgreSQL flavour: the migration to version 2.
--
-- Applied by PostgresJobBackend.open() under a transaction-level advisory lock (so several
-- processes starting together do not race) when __SCHEMA__.meta says an older version.
-- Every statement is idempotent. __SCHEMA__ is replaced by the quoted schema name
-- (HEADWAY_JOBS_PG_SCHEMA, default headway_jobs). Times are float seconds since the
-- epoch from the server's clock (clock_timestamp()), so every machine agrees.
--
-- jobs: one row per job, keyed by (queue, id). `data` is the JSON payload written at
--   enqueue and never changed. `seq` keeps FIFO order among equal (priority, run_at).
--   `tenant` ('' = none) is what claims take turns between; `unique_key` + `unique_until`
--   hold a unique job's slot; `cancel` records a cancel request for a running job.
-- queues: every queue seen, and whether it is paused (its row is also the lock that
--   claims of a rate-limited queue take).
-- rate_marks: the starts counted against a queue's rate limit (a sliding window; the
--   limit itself is declared in code, `jobs.rate_limit(...)`, and passed to claim).
CREATE SCHEMA IF NOT EXISTS __SCHEMA__;

CREATE TABLE IF NOT EXISTS __SCHEMA__.meta (
    version integer NOT NULL
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.jobs (
    queue            text    NOT NULL,
    id               text    NOT NULL,
    task             text    NOT NULL,
    data             bytea   NOT NULL,
    state            text    NOT NULL,
    priority         integer NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 1,
    enqueued_at      float8  NOT NULL,
    run_at           float8  NOT NULL,
    started_at       float8,
    finished_at      float8,
    worker           text,
    lease_until      float8,
    progress         integer NOT NULL DEFAULT 0,
    progress_message text,
    result           bytea,
    error            text,
    traceback        text,
    seq              bigserial,
    tenant           text    NOT NULL DEFAULT '',
    unique_key       text,
    unique_until     float8,
    cancel           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (queue, id)
) WITH (fillfactor = 80);

-- Ready jobs in claim order (partial: only queued rows).
CREATE INDEX IF NOT EXISTS jobs_ready ON __SCHEMA__.jobs (queue, tenant, priority DESC, run_at, seq)
    WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_order ON __SCHEMA__.jobs (queue, priority DESC, run_at, seq)
    WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_due ON __SCHEMA__.jobs (queue, run_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS jobs_lease ON __SCHEMA__.jobs (queue, lease_until)
    WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_done ON __SCHEMA__.jobs (queue, state, finished_at);
CREATE INDEX IF NOT EXISTS jobs_id ON __SCHEMA__.jobs (id);
CREATE INDEX IF NOT EXISTS jobs_unique ON __SCHEMA__.jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS __SCHEMA__.queues (
    name        text    PRIMARY KEY,
    paused      boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS __SCHEMA__.rate_marks (
    queue  text   NOT NULL,
    tenant text   NOT NULL,
    at     float8 NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_marks_at ON __SCHEMA__.rate_marks (queue, at);

-- The store's clock: float seconds since the epoch.
CREATE OR REPLACE FUNCTION __SCHEMA__.now_s() RETURNS float8
LANGUAGE sql VOLATILE AS $$ SELECT extract(epoch FROM clock_timestamp())::float8 $$;

-- enqueue: store a batch of jobs of one queue (one round trip; also what a caller's
-- transaction runs for a transactional enqueue, so the NOTIFY is sent at its COMMIT).
-- Arrays are parallel, one element per job. A job whose id exists is skipped. A job with
-- a unique key is skipped while another job of the queue holds that key (queued,
-- scheduled or running, or before its unique_until); the key is locked for the rest of
-- the transaction (advisory lock) so that two enqueues cannot both take it.
-- p_channel: the NOTIFY channel ('' = polling mode: no NOTIFY).
-- p_ukey is NULL when no job of the batch has a unique key (the fast path).
-- Returns one row per job stored (o_id, NULL) or refused for its unique key
-- (o_id, the id of the job holding the key).
CREATE OR REPLACE FUNCTION __SCHEMA__.enqueue(
    p_queue text, p_ids text[], p_tasks text[], p_data bytea[], p_pri integer[],
    p_max integer[], p_delay float8[], p_tenant text[], p_ukey text[], p_uttl float8[],
    p_channel text
) RETURNS TABLE (o_id text, o_holder text)
LANGUAGE plpgsql AS $$
DECLARE
    t float8 := __SCHEMA__.now_s();
    ready integer := 0;
    i integer;
    holder text;
    n integer;
BEGIN
    INSERT INTO __SCHEMA__.queues (name) VALUES (p_queue) ON CONFLICT DO NOTHING;
    IF p_ukey IS NULL THEN
        -- No unique keys: one INSERT for the batch.
        RETURN QUERY
        WITH ins AS (
            INSERT INTO __SCHEMA__.jobs AS j (queue, id, task, data, state, priority,
                max_attempts, enqueued_at, run_at, tenant)
            SELECT p_queue, u.id, u.task, u.data,
                   CASE WHEN u.delay > 0 THEN 'scheduled' ELSE 'queued' END,
                   u.pri, u.mx, t, t + greatest(u.delay, 0), coalesce(u.tenant, '')
            FROM unnest(p_ids, p_tasks, p_data, p_pri, p_max, p_delay, p_tenant)
                 WITH ORDINALITY AS u(id, task, data, pri, mx, delay, tenant, ord)
            ORDER BY u.ord
            ON CONFLICT DO NOTHING
            RETURNING j.id
        )
        SELECT ins.id, NULL::text FROM ins;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 AND p_channel <> '' AND EXISTS (
                SELECT 1 FROM unnest(p_delay) d WHERE d <= 0) THEN
            PERFORM pg_notify(p_channel, p_queue);
        END IF;
        RETURN;
    END IF;
    -- Some unique keys: job by job, keys locked in a fixed order (no deadlock).
    PERFORM pg_advisory_xact_lock(hashtextextended(p_queue || chr(1) || k, 0))
    FROM (SELECT DISTINCT k FROM unnest(p_ukey) k WHERE k IS NOT NULL ORDER BY k) keys;
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        holder := NULL;
        IF p_ukey[i] IS NOT NULL THEN
            SELECT j.id INTO holder FROM __SCHEMA__.jobs j
            WHERE j.queue = p_queue AND j.unique_key = p_ukey[i]
              AND (j.state IN ('queued', 'scheduled', 'running') OR j.unique_until > t)
            LIMIT 1;
        END IF;
        IF holder IS NOT NULL THEN
            o_id := p_ids[i]; o_holder := holder; RETURN NEXT;
            CONTINUE;
        END IF;
        INSERT INTO __SCHEMA__.jobs (queue, id, task, data, state, priority, max_attempts,
            enqueued_at, run_at, tenant, unique_key, unique_until)
        VALUES (p_queue, p_ids[i], p_tasks[i], p_data[i],
            CASE WHEN p_delay[i] > 0 THEN 'scheduled' ELSE 'queued' END, p_pri[i], p_max[i],
            t, t + greatest(p_delay[i], 0), coalesce(p_tenant[i], ''), p_ukey[i],
            t + p_uttl[i])
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            IF p_delay[i] <= 0 THEN ready := ready + 1; END IF;
            o_id := p_ids[i]; o_holder := NULL; RETURN NEXT;
        END IF;
    END LOOP;
    IF ready > 0 AND p_channel <> '' THEN
        PERFORM pg_notify(p_channel, p_queue);
    END IF;
END $$;

-- claim: atomically take up to p_limit ready jobs of a queue for a worker (one round trip).
-- 1. due scheduled jobs become ready; 2. running jobs whose lease expired go back to the
-- queue (or to the failed store after their last attempt, or to cancelled when a cancel
-- was requested); 3. unless the queue is paused, up to p_limit ready jobs are marked
-- running under a lease, taking turns between tenants: each tenant with ready jobs gives
-- up to ceil(p_limit / tenants) (its best by priority, then due time), served in turn
-- starting after p_after (the tenant the worker's last claim ended with), and what is
-- left of p_limit is filled in plain priority order. Rows are locked with SKIP LOCKED, so
-- concurrent claims never wait for each other nor share a job.
-- Rate limit (p_rate_n and/or p_key_n starts per p_period seconds, NULL = none): the
-- queue row is locked for the claim (claims of a limited queue take turns), the starts
-- of the last period (rate_marks) are counted, p_limit is lowered to what is left, and
-- a tenant (key) gives no more than what is left of its own limit.
-- The claim's commit is asynchronous (synchronous_commit off for its transaction).
-- Returns the claimed jobs, o_pos giving the order in which to start them.
DROP FUNCTION IF EXISTS __SCHEMA__.claim(text, text, integer, float8, text, text);
CREATE OR REPLACE FUNCTION __SCHEMA__.claim(
    p_queue text, p_worker text, p_limit integer, p_lease float8, p_lost text, p_after text,
    p_rate_n integer, p_period float8, p_key_n integer
) RETURNS TABLE (o_id text, o_data bytea, o_attempt integer, o_max integer, o_tenant text,
                 o_pos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t float8 := __SCHEMA__.now_s();
    tenants text[];
    caps integer[];
    per integer;
    got integer := 0;
BEGIN
    -- A claim need not wait for its WAL flush: lost in a server crash, its jobs are
    -- simply queued again (at-least-once holds). Enqueues stay synchronous.
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE __SCHEMA__.jobs j SET state = 'queued'
    WHERE j.queue = p_queue AND j.id IN (
        SELECT s.id FROM __SCHEMA__.jobs s
        WHERE s.queue = p_queue AND s.state = 'scheduled' AND s.run_at <= t
        FOR UPDATE SKIP LOCKED);
    UPDATE __SCHEMA__.jobs j SET
        state = CASE WHEN j.cancel THEN 'cancelled'
                     WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
        error = CASE WHEN NOT j.cancel AND j.attempts >= j.max_attempts THEN p_lost
                     ELSE j.error END,
        finished_at = CASE WHEN j.cancel OR j.attempts >= j.max_attempts THEN t END,
        run_at = t, worker = NULL, lease_until = NULL
    WHERE j.queue = p_queue AND j.id IN (
        SELECT s.id FROM __SCHEMA__.jobs s
        WHERE s.queue = p_queue AND s.state = 'running' AND s.lease_until < t
        FOR UPDATE SKIP LOCKED);
    IF EXISTS (SELECT 1 FROM __SCHEMA__.queues q WHERE q.name = p_queue AND q.paused) THEN
        RETURN;
    END IF;
    IF p_rate_n IS NOT NULL OR p_key_n IS NOT NULL THEN
        PERFORM 1 FROM __SCHEMA__.queues q WHERE q.name = p_queue FOR UPDATE;
        t := __SCHEMA__.now_s();  -- after the wait for the lock
        DELETE FROM __SCHEMA__.rate_marks m WHERE m.queue = p_queue AND m.at <= t - p_period;
        IF p_rate_n IS NOT NULL THEN
            p_limit := least(p_limit, p_rate_n -
                (SELECT count(*) FROM __SCHEMA__.rate_marks m WHERE m.queue = p_queue));
        END IF;
    END IF;
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    -- The tenants with ready jobs (a loose index scan of jobs_ready).
    WITH RECURSIVE ten(tenant) AS (
        (SELECT s.tenant FROM __SCHEMA__.jobs s WHERE s.queue = p_queue AND s.state = 'queued'
         ORDER BY s.tenant LIMIT 1)
        UNION ALL
        SELECT (SELECT s.tenant FROM __SCHEMA__.jobs s
                WHERE s.queue = p_queue AND s.state = 'queued' AND s.tenant > ten.tenant
                ORDER BY s.tenant LIMIT 1)
        FROM ten WHERE ten.tenant IS NOT NULL
    )
    SELECT array_agg(ten.tenant) INTO tenants FROM ten WHERE ten.tenant IS NOT NULL;
    IF tenants IS NULL THEN
        RETURN;
    END IF;
    IF p_key_n IS NOT NULL THEN
        -- Each tenant's room under its limit; the claim is then a round robin within it.
        SELECT array_agg(x.tenant), array_agg(x.room) INTO tenants, caps FROM (
            SELECT ten.tenant, p_key_n - coalesce(u.used, 0) AS room
            FROM unnest(tenants) AS ten(tenant)
            LEFT JOIN (SELECT m.tenant, count(*) AS used FROM __SCHEMA__.rate_marks m
                       WHERE m.queue = p_queue GROUP BY m.tenant) u ON u.tenant = ten.tenant
        ) x WHERE x.room > 0;
        IF tenants IS NULL THEN
            RETURN;
        END IF;
        RETURN QUERY
        WITH cand AS (
            SELECT c.id, c.tenant,
                   row_number() OVER (PARTITION BY c.tenant
                                      ORDER BY c.priority DESC, c.run_at, c.seq) AS rn
            FROM unnest(tenants, caps) AS ten(tenant, room)
            CROSS JOIN LATERAL (
                SELECT s.id, s.tenant, s.priority, s.run_at, s.seq FROM __SCHEMA__.jobs s
                WHERE s.queue = p_queue AND s.state = 'queued' AND s.tenant = ten.tenant
                ORDER BY s.priority DESC, s.run_at, s.seq LIMIT least(ten.room, p_limit)
                FOR UPDATE SKIP LOCKED) c
        ), picked AS (
            SELECT cand.id, row_number() OVER (
                       ORDER BY cand.rn, cand.tenant <= p_after, cand.tenant) AS pos
            FROM cand ORDER BY pos LIMIT p_limit
        )
        UPDATE __SCHEMA__.jobs j SET state = 'running', attempts = j.attempts + 1,
            worker = p_worker, started_at = t, lease_until = t + p_lease
        FROM picked WHERE j.queue = p_queue AND j.id = picked.id
        RETURNING j.id, j.data, j.attempts, j.max_attempts, j.tenant, picked.pos;
    ELSIF array_length(tenants, 1) > 1 THEN
        per := ceil(p_limit::numeric / array_length(tenants, 1));
        RETURN QUERY
        WITH cand AS (
            SELECT c.id, c.tenant,
                   row_number() OVER (PARTITION BY c.tenant
                                      ORDER BY c.priority DESC, c.run_at, c.seq) AS rn
            FROM unnest(tenants) AS ten(tenant)
            CROSS JOIN LATERAL (
                SELECT s.id, s.tenant, s.priority, s.run_at, s.seq FROM __SCHEMA__.jobs s
                WHERE s.queue = p_queue AND s.state = 'queued' AND s.tenant = ten.tenant
                ORDER BY s.priority DESC, s.run_at, s.seq LIMIT per
                FOR UPDATE SKIP LOCKED) c
        ), picked AS (
            SELECT cand.id, row_number() OVER (
                       ORDER BY cand.rn, cand.tenant <= p_after, cand.tenant) AS pos
            FROM cand ORDER BY pos LIMIT p_limit
        )
        UPDATE __SCHEMA__.jobs j SET state = 'running', attempts = j.attempts + 1,
            worker = p_worker, started_at = t, lease_until = t + p_lease
        FROM picked WHERE j.queue = p_queue AND j.id = picked.id
        RETURNING j.id, j.data, j.attempts, j.max_attempts, j.tenant, picked.pos;
        GET DIAGNOSTICS got = ROW_COUNT;
        IF got < p_limit THEN
            RETURN QUERY  -- what the turns left of p_limit, in plain priority order
            WITH locked AS (
                SELECT s.id, s.priority, s.run_at, s.seq FROM __SCHEMA__.jobs s
                WHERE s.queue = p_queue AND s.state = 'queued'
                ORDER BY s.priority DESC, s.run_at, s.seq LIMIT p_limit - got
                FOR UPDATE SKIP LOCKED
            ), picked AS (
                SELECT locked.id, got + row_number() OVER (
                           ORDER BY locked.priority DESC, locked.run_at, locked.seq) AS pos
                FROM locked
            )
            UPDATE __SCHEMA__.jobs j SET state = 'running', attempts = j.attempts + 1,
                worker = p_worker, started_at = t, lease_until = t + p_lease
            FROM picked WHERE j.queue = p_queue AND j.id = picked.id
            RETURNING j.id, j.data, j.attempts, j.max_attempts, j.tenant, picked.pos;
        END IF;
    ELSE  -- one tenant: its index order
        RETURN QUERY
        WITH locked AS (
            SELECT s.id, s.priority, s.run_at, s.seq FROM __SCHEMA__.jobs s
            WHERE s.queue = p_queue AND s.state = 'queued' AND s.tenant = tenants[1]
            ORDER BY s.priority DESC, s.run_at, s.seq LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ), picked AS (
            SELECT locked.id, row_number() OVER (
                       ORDER BY locked.priority DESC, locked.run_at, locked.seq) AS pos
            FROM locked
        )
        UPDATE __SCHEMA__.jobs j SET state = 'running', attempts = j.attempts + 1,
            worker = p_worker, started_at = t, lease_until = t + p_lease
        FROM picked WHERE j.queue = p_queue AND j.id = picked.id
        RETURNING j.id, j.data, j.attempts, j.max_attempts, j.tenant, picked.pos;
    END IF;
    IF p_rate_n IS NOT NULL OR p_key_n IS NOT NULL THEN
        INSERT INTO __SCHEMA__.rate_marks (queue, tenant, at)
        SELECT p_queue, j.tenant, t FROM __SCHEMA__.jobs j
        WHERE j.queue = p_queue AND j.state = 'running' AND j.lease_until = t + p_lease
          AND j.worker = p_worker AND j.started_at = t;
    END IF;
END $$;
