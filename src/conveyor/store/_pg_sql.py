"""The SQL statements of the PostgreSQL store, one named constant each.

Parameters are named (``%(now)s``) and every time is passed in by the store,
never read from the server's clock, so tests move time. Batches travel as
one JSON document opened with ``json_to_recordset``: a whole batch, however
large, is one statement and one round trip. Each hot-path statement writes
a job, its attempt and its event in one go through data-modifying CTEs.

Where a statement differs from the SQLite store, a comment says why. The
common reasons: PostgreSQL locks rows (``FOR UPDATE SKIP LOCKED``) where
SQLite locks the whole file, and it can do several writes in one statement.
"""

from __future__ import annotations

#: The channel ``enqueue`` and ``rescue`` notify, with a queue name as the
#: payload. A store in a schema of its own (``?schema=NAME``) uses
#: ``conveyor_jobs_NAME``, so tenants sharing a database never wake each
#: other; the statements take the channel as ``%(channel)s``.
CHANNEL = "conveyor_jobs"


def channel_for(schema: str | None) -> str:
    """The channel hints travel on for tables in ``schema``."""
    return CHANNEL if schema is None else f"{CHANNEL}_{schema}"


# -- sessions and migrations ---------------------------------------------

#: Run once on every new pooled connection. UTC makes every time read back
#: aware and in UTC; search_path points unqualified names at the schema
#: chosen with ``?schema=`` (NULL keeps the server's default).
CONFIGURE_SESSION = """
SELECT set_config('TimeZone', 'UTC', false),
       set_config('search_path',
                  coalesce(%(search_path)s, current_setting('search_path')),
                  false)
"""

#: Held until the migrating transaction ends, so migrations started by
#: several processes at once run one after the other.
LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock(%(key)s)"

SCHEMA_EXISTS = "SELECT to_regnamespace(%(schema)s) IS NOT NULL"

MIGRATIONS_TABLE_EXISTS = "SELECT to_regclass('conveyor_migrations') IS NOT NULL"

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS conveyor_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL
)
"""

APPLIED_VERSIONS = "SELECT version FROM conveyor_migrations"

SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM conveyor_migrations"

# The only time taken from the server's clock: a migration is not a job,
# and migrate() has no ``now`` to pass.
RECORD_MIGRATION = """
INSERT INTO conveyor_migrations (version, applied_at) VALUES (%(version)s, now())
"""

# -- the hot path --------------------------------------------------------

# A SELECT-only CTE runs only if the main query reads it, and pg_notify is
# such a CTE: the ``>= 0`` test reads it without filtering anything out.
# PostgreSQL holds the notifications until the transaction commits and drops
# them on rollback, so a hint never announces a job that does not exist.

#: Formatted with ``schema``: the schema-qualified prefix ('"name".' or '').
#: Unlike the other statements it also runs on an application's own
#: connection, whose search_path Conveyor does not set. Ids come back in
#: input order: rows are inserted in ordinal order, so ids rise with it.
ENQUEUE_TEMPLATE = """
WITH input AS (
    SELECT *
    FROM ROWS FROM (
        json_to_recordset(%(jobs)s::json) AS (
            task text, queue text, priority int, args text, kwargs text,
            max_attempts int, timeout float8, run_at timestamptz
        )
    ) WITH ORDINALITY AS i (
        task, queue, priority, args, kwargs, max_attempts, timeout, run_at, ord
    )
),
inserted AS (
    INSERT INTO {schema}jobs (
        task, queue, priority, state, args, kwargs, max_attempts, timeout,
        run_at, created_at, updated_at
    )
    SELECT task, queue, priority, 'queued', args, kwargs, max_attempts, timeout,
           coalesce(run_at, %(now)s), %(now)s, %(now)s
    FROM input
    ORDER BY ord
    RETURNING id
),
events AS (
    INSERT INTO {schema}job_events (job_id, at, from_state, to_state, reason, actor)
    SELECT id, %(now)s, NULL, 'queued', 'enqueued', %(actor)s
    FROM inserted
),
hints AS (
    SELECT pg_notify(%(channel)s, queue)
    FROM (SELECT DISTINCT queue FROM input) AS queues
)
SELECT id
FROM inserted
WHERE (SELECT count(*) FROM hints) >= 0
ORDER BY id
"""

# SQLite serialises claims by locking the database file; here concurrent
# claimers skip each other's locked rows instead of waiting on them. FOR
# UPDATE re-checks ``state = 'queued'`` on the newest version of each row
# it locks, so the UPDATE must not repeat it: that predicate matches the
# partial claim index, and once the table has been analysed the planner
# would join through that index, scanning the whole queue for each row.
_CLAIM_TEMPLATE = """
WITH picked AS (
    SELECT id
    FROM jobs
    WHERE state = 'queued' AND run_at <= %(now)s {queue_filter}
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE jobs
    SET state = 'running',
        attempts = jobs.attempts + 1,
        worker_id = %(worker_id)s,
        lease_expires_at = %(lease_until)s,
        updated_at = %(now)s
    FROM picked
    WHERE jobs.id = picked.id
    RETURNING jobs.id, jobs.task, jobs.queue, jobs.args, jobs.kwargs,
              jobs.attempts, jobs.max_attempts, jobs.timeout,
              jobs.priority, jobs.run_at
),
opened AS (
    INSERT INTO job_attempts (job_id, attempt, worker_id, started_at)
    SELECT id, attempts, %(worker_id)s, %(now)s
    FROM claimed
),
events AS (
    INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor)
    SELECT id, %(now)s, 'queued', 'running', 'claimed', %(worker_id)s
    FROM claimed
)
SELECT id, task, queue, args, kwargs, attempts, max_attempts, timeout
FROM claimed
ORDER BY priority DESC, run_at, id
"""

#: Claim from every queue.
CLAIM_ANY_QUEUE = _CLAIM_TEMPLATE.format(queue_filter="")

#: Claim from the queues named in ``%(queues)s``. A separate statement
#: rather than ``(%(queues)s IS NULL OR ...)``, so each keeps a plan of
#: its own once prepared.
CLAIM_FROM_QUEUES = _CLAIM_TEMPLATE.format(
    queue_filter="AND queue = ANY(%(queues)s::text[])"
)

HEARTBEAT = """
UPDATE jobs
SET lease_expires_at = %(lease_until)s, updated_at = %(now)s
WHERE id = ANY(%(job_ids)s::bigint[])
  AND state = 'running'
  AND worker_id = %(worker_id)s
RETURNING id
"""

# The planner must reach the reported jobs by primary key: ``state =
# 'running'`` matches the partial lease index, and joining through that
# index (full of rows that ran and finished since the last vacuum) turns one
# batch into seconds of work. The id array gives it the key lookup, and the
# materialised batch is decoded once, not once per row scanned.
#
# The store works out each outcome's target in Python with the rules it
# shares with SQLite (``_outcomes``) and sends the batch as one JSON
# document: encoding it is one C call, where adapting one array per column
# costs the client more than the statement costs the server. The
# guard in the UPDATE is the late-result rule; attempts and events are
# written for the accepted rows only, in the same statement.
FINISH = """
WITH reported AS MATERIALIZED (
    SELECT *
    FROM ROWS FROM (
        json_to_recordset(%(outcomes)s::json) AS (
            job_id bigint, attempt int, state text, outcome text, reason text,
            uncounted int, run_at timestamptz, result text, keep_error bool,
            error_type text, error_message text, traceback text
        )
    ) WITH ORDINALITY AS r (
        job_id, attempt, state, outcome, reason, uncounted, run_at, result,
        keep_error, error_type, error_message, traceback, ord
    )
),
finished AS (
    UPDATE jobs
    SET state = r.state,
        attempts = jobs.attempts - r.uncounted,
        run_at = r.run_at,
        finished_at = CASE WHEN r.state IN ('succeeded', 'failed')
                           THEN %(now)s::timestamptz END,
        result = r.result,
        error_type = CASE WHEN r.keep_error THEN jobs.error_type
                          ELSE r.error_type END,
        error_message = CASE WHEN r.keep_error THEN jobs.error_message
                             ELSE r.error_message END,
        traceback = CASE WHEN r.keep_error THEN jobs.traceback
                         ELSE r.traceback END,
        worker_id = NULL,
        lease_expires_at = NULL,
        updated_at = %(now)s
    FROM reported AS r
    WHERE jobs.id = ANY(%(job_ids)s::bigint[])
      AND jobs.id = r.job_id
      AND jobs.state = 'running'
      AND jobs.worker_id = %(worker_id)s
      AND jobs.attempts = r.attempt
    RETURNING jobs.id, r.attempt, r.state, r.outcome, r.reason, r.error_type,
              r.error_message, r.traceback, r.ord
),
closed AS (
    UPDATE job_attempts AS a
    SET finished_at = %(now)s,
        outcome = f.outcome,
        error_type = f.error_type,
        error_message = f.error_message,
        traceback = f.traceback
    FROM finished AS f
    WHERE a.job_id = f.id AND a.attempt = f.attempt AND a.finished_at IS NULL
),
events AS (
    INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor)
    SELECT id, %(now)s, 'running', state, reason, %(worker_id)s
    FROM finished
)
SELECT id FROM finished ORDER BY ord
"""

# Row locks with SKIP LOCKED let any number of rescuers run at once (SQLite
# has one writer at a time); the UPDATE re-checks the state so a job that
# finished meanwhile is left alone. A job put back in line is announced
# like a new one.
RESCUE = """
WITH lapsed AS (
    SELECT id, worker_id
    FROM jobs
    WHERE state = 'running' AND lease_expires_at < %(now)s
    ORDER BY lease_expires_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
rescued AS (
    UPDATE jobs
    SET state = CASE WHEN jobs.attempts >= jobs.max_attempts
                     THEN 'failed' ELSE 'queued' END,
        run_at = %(now)s,
        finished_at = CASE WHEN jobs.attempts >= jobs.max_attempts
                           THEN %(now)s::timestamptz END,
        error_type = 'LeaseExpired',
        error_message = 'the lease of worker '
                        || coalesce(lapsed.worker_id, 'None')
                        || ' lapsed before the attempt ended',
        traceback = NULL,
        worker_id = NULL,
        lease_expires_at = NULL,
        updated_at = %(now)s
    FROM lapsed
    WHERE jobs.id = lapsed.id AND jobs.state = 'running'
    RETURNING jobs.id, jobs.attempts, lapsed.worker_id, jobs.state, jobs.queue,
              jobs.error_message
),
lost AS (
    UPDATE job_attempts AS a
    SET finished_at = %(now)s,
        outcome = 'lost',
        error_type = 'LeaseExpired',
        error_message = r.error_message
    FROM rescued AS r
    WHERE a.job_id = r.id AND a.attempt = r.attempts AND a.finished_at IS NULL
),
events AS (
    INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor)
    SELECT id, %(now)s, 'running', state, 'lease lapsed', %(actor)s
    FROM rescued
),
hints AS (
    SELECT pg_notify(%(channel)s, queue)
    FROM (SELECT DISTINCT queue FROM rescued WHERE state = 'queued') AS queues
)
SELECT id, attempts, worker_id, state
FROM rescued
WHERE (SELECT count(*) FROM hints) >= 0
ORDER BY id
"""

# -- reading -------------------------------------------------------------

#: In the order of ``JobRecord``'s fields.
JOB_COLUMNS = """
id, task, queue, priority, state, args, kwargs, attempts, max_attempts,
timeout, run_at, created_at, updated_at, finished_at, worker_id,
lease_expires_at, result, error_type, error_message, traceback
"""

GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %(job_id)s"

#: Formatted with ``where``: "" or "WHERE " and some of ``JOB_FILTERS``.
LIST_JOBS_TEMPLATE = f"""
SELECT {JOB_COLUMNS}
FROM jobs
{{where}}
ORDER BY id DESC
LIMIT %(limit)s
"""

#: ``JobFilter`` field -> its condition, joined with AND.
JOB_FILTERS = {
    "state": "state = %(state)s",
    "queue": "queue = %(queue)s",
    "task": "task = %(task)s",
    "before_id": "id < %(before_id)s",
}

COUNT_JOBS = "SELECT state, count(*) FROM jobs GROUP BY state"

COUNT_JOBS_IN_QUEUE = """
SELECT state, count(*) FROM jobs WHERE queue = %(queue)s GROUP BY state
"""

# Ordered by id, not attempt: a snoozed or interrupted attempt is not
# counted, so the next run reuses its number.
LIST_ATTEMPTS = """
SELECT job_id, attempt, worker_id, started_at, finished_at, outcome,
       error_type, error_message, traceback
FROM job_attempts
WHERE job_id = %(job_id)s
ORDER BY id
"""

LIST_EVENTS = """
SELECT id, job_id, at, from_state, to_state, reason, actor
FROM job_events
WHERE job_id = %(job_id)s
ORDER BY id
"""

# -- workers -------------------------------------------------------------

REGISTER_WORKER = """
INSERT INTO workers (
    id, host, pid, queues, concurrency, pool, started_at, heartbeat_at,
    state, running_jobs
)
VALUES (
    %(id)s, %(host)s, %(pid)s, %(queues)s, %(concurrency)s, %(pool)s,
    %(started_at)s, %(heartbeat_at)s, %(state)s, %(running_jobs)s
)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host,
    pid = excluded.pid,
    queues = excluded.queues,
    concurrency = excluded.concurrency,
    pool = excluded.pool,
    started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at,
    state = excluded.state,
    running_jobs = excluded.running_jobs
"""

# A worker marked dead that beats again is alive after all (a long pause,
# not a crash); one that stopped stays stopped.
BEAT_WORKER = """
UPDATE workers
SET heartbeat_at = %(now)s, running_jobs = %(running_jobs)s, state = 'running'
WHERE id = %(worker_id)s AND state <> 'stopped'
"""

STOP_WORKER = """
UPDATE workers
SET state = 'stopped', heartbeat_at = %(now)s, running_jobs = 0
WHERE id = %(worker_id)s
"""

MARK_DEAD_WORKERS = """
UPDATE workers
SET state = 'dead'
WHERE state = 'running' AND heartbeat_at < %(stale_before)s
RETURNING id
"""

LIST_WORKERS = """
SELECT id, host, pid, queues, concurrency, pool, started_at, heartbeat_at,
       state, running_jobs
FROM workers
ORDER BY started_at DESC, id
"""

# -- housekeeping --------------------------------------------------------

# SKIP LOCKED: a job some other transaction holds is left for the next run.
PRUNE = """
WITH doomed AS (
    SELECT id
    FROM jobs
    WHERE state IN ('succeeded', 'failed', 'cancelled')
      AND finished_at < %(finished_before)s
    ORDER BY finished_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
attempts AS (
    DELETE FROM job_attempts WHERE job_id IN (SELECT id FROM doomed)
),
events AS (
    DELETE FROM job_events WHERE job_id IN (SELECT id FROM doomed)
),
deleted AS (
    DELETE FROM jobs WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT count(*) FROM deleted
"""
