-- Conveyor schema, version 1 (SQLite).
-- Times are REAL seconds since the Unix epoch, in UTC: SQLite has no time
-- type, and numbers compare and index faster than ISO strings.

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL DEFAULT 'default',
    priority         INTEGER NOT NULL DEFAULT 0,
    -- Every state the design knows is allowed now: changing a CHECK in
    -- SQLite means rebuilding the table.
    state            TEXT    NOT NULL CHECK (state IN (
                         'waiting', 'queued', 'held', 'running',
                         'succeeded', 'failed', 'cancelled')),
    args             TEXT    NOT NULL DEFAULT '[]',
    kwargs           TEXT    NOT NULL DEFAULT '{}',
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    timeout          REAL,
    run_at           REAL    NOT NULL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    finished_at      REAL,
    worker_id        TEXT,
    lease_expires_at REAL,
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
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    worker_id     TEXT    NOT NULL,
    started_at    REAL    NOT NULL,
    finished_at   REAL,
    outcome       TEXT CHECK (outcome IN (
                      'succeeded', 'failed', 'timed_out', 'snoozed',
                      'interrupted', 'lost')),
    error_type    TEXT,
    error_message TEXT,
    traceback     TEXT
);

CREATE INDEX job_attempts_job ON job_attempts (job_id, attempt);

CREATE TABLE job_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER NOT NULL,
    at         REAL    NOT NULL,
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
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('running', 'stopped', 'dead')),
    running_jobs INTEGER NOT NULL DEFAULT 0
);
