-- Conveyor schema, version 1 (PostgreSQL).
-- Mirrors sqlite/0001_initial.sql column for column. Where the dialects
-- differ:
--
-- - Times are TIMESTAMPTZ (SQLite keeps REAL epoch seconds); the store
--   always passes them in, so no column defaults to now().
-- - Ids are BIGINT identities; a busy queue passes 2^31 jobs in time.
-- - args, kwargs and result stay TEXT, not JSONB: the store hands encoded
--   JSON strings in and out, and JSONB would parse and re-encode every
--   payload on the hot path for no query that needs it.
-- - No foreign keys, as in SQLite: prune deletes attempts and events itself,
--   and the hot path is spared the checks.
--
-- migrate() runs this file with search_path set to Conveyor's schema, so
-- names are left unqualified here.

CREATE TABLE jobs (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL DEFAULT 'default',
    priority         INTEGER NOT NULL DEFAULT 0,
    -- Every state the design knows is allowed now, as in SQLite.
    state            TEXT    NOT NULL CHECK (state IN (
                         'waiting', 'queued', 'held', 'running',
                         'succeeded', 'failed', 'cancelled')),
    args             TEXT    NOT NULL DEFAULT '[]',
    kwargs           TEXT    NOT NULL DEFAULT '{}',
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    timeout          DOUBLE PRECISION,
    run_at           TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    worker_id        TEXT,
    lease_expires_at TIMESTAMPTZ,
    result           TEXT,
    error_type       TEXT,
    error_message    TEXT,
    traceback        TEXT
);

-- The claim: queued jobs in priority order. Partial, so finished jobs,
-- however many, never slow it down.
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id)
    WHERE state = 'queued';

-- The rescue: running jobs by lease end.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';

-- Pruning: final jobs by age.
CREATE INDEX jobs_finished ON jobs (finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');

-- Listing by state, newest first.
CREATE INDEX jobs_state ON jobs (state, id);

CREATE TABLE job_attempts (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        BIGINT  NOT NULL,
    attempt       INTEGER NOT NULL,
    worker_id     TEXT    NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    outcome       TEXT CHECK (outcome IN (
                      'succeeded', 'failed', 'timed_out', 'snoozed',
                      'interrupted', 'lost')),
    error_type    TEXT,
    error_message TEXT,
    traceback     TEXT
);

CREATE INDEX job_attempts_job ON job_attempts (job_id, attempt);

CREATE TABLE job_events (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     BIGINT  NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    actor      TEXT    NOT NULL
);

CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE TABLE workers (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT    NOT NULL,  -- JSON list; empty means every queue
    concurrency  INTEGER NOT NULL,
    pool         TEXT    NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('running', 'stopped', 'dead')),
    running_jobs INTEGER NOT NULL DEFAULT 0
);
