"""The SQL statements of the SQLite store, each named for what it does.

Times are REAL seconds since the epoch (see the schema). Statements that
differ from PostgreSQL's say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..records import JobFilter

CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS conveyor_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
)
"""

MIGRATIONS_TABLE_EXISTS = """
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conveyor_migrations'
"""

APPLIED_VERSIONS = "SELECT version FROM conveyor_migrations"

SCHEMA_VERSION = "SELECT max(version) FROM conveyor_migrations"

RECORD_VERSION = "INSERT INTO conveyor_migrations (version, applied_at) VALUES (?, ?)"

# The batch arrives as one JSON array of rows, read with json_each: one
# statement for any number of jobs.
INSERT_JOBS = """
INSERT INTO jobs (task, queue, priority, state, args, kwargs, max_attempts,
                  timeout, run_at, created_at, updated_at)
SELECT value ->> 0, value ->> 1, value ->> 2, 'queued', value ->> 3,
       value ->> 4, value ->> 5, value ->> 6, value ->> 7, :now, :now
FROM json_each(:rows)
ORDER BY key
RETURNING id
"""

# Which attempt the worker holds of each job in the batch. "+state" keeps
# SQLite from driving the lookup through the state index instead of the
# primary key.
HELD_ATTEMPTS = """
SELECT id, attempts FROM jobs
WHERE id IN (SELECT value FROM json_each(?))
  AND +state = 'running' AND worker_id = ?
"""

INSERT_EVENT = """
INSERT INTO job_events (job_id, at, from_state, to_state, reason, actor)
VALUES (?, ?, ?, ?, ?, ?)
"""

INSERT_ATTEMPT = """
INSERT INTO job_attempts (job_id, attempt, worker_id, started_at)
VALUES (?, ?, ?, ?)
"""

# SQLite has no SKIP LOCKED: BEGIN IMMEDIATE already gives the claimer the
# only write lock on the file, so no other claimer can pick the same rows.
_CLAIM = """
UPDATE jobs
SET state = 'running', attempts = attempts + 1, worker_id = :worker,
    lease_expires_at = :lease, updated_at = :now
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_claim
    WHERE state = 'queued' AND run_at <= :now {queue_filter}
    ORDER BY priority DESC, run_at, id
    LIMIT :limit
)
RETURNING id, task, queue, args, kwargs, attempts, max_attempts, timeout,
          priority, run_at
"""


def claim_statement(queues: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    """The claim statement for these queues, and its queue parameters."""
    if queues is None:
        return _CLAIM.format(queue_filter=""), {}

    names = {f"q{index}": queue for index, queue in enumerate(queues)}
    placeholders = ", ".join(f":{name}" for name in names)
    return _CLAIM.format(queue_filter=f"AND queue IN ({placeholders})"), names


EXTEND_LEASE = """
UPDATE jobs SET lease_expires_at = ?, updated_at = ?
WHERE id = ? AND state = 'running' AND worker_id = ?
RETURNING id
"""

# The late-result guard: only the lease holder, for the attempt it runs.
FINISH_JOB = """
UPDATE jobs
SET state = :state,
    updated_at = :now,
    finished_at = :finished_at,
    run_at = :run_at,
    attempts = attempts - :uncount,
    worker_id = NULL,
    lease_expires_at = NULL,
    result = :result,
    error_type = CASE WHEN :keep_error THEN error_type ELSE :error_type END,
    error_message = CASE WHEN :keep_error THEN error_message
                         ELSE :error_message END,
    traceback = CASE WHEN :keep_error THEN traceback ELSE :traceback END
WHERE id = :id AND state = 'running' AND worker_id = :worker
  AND attempts = :attempt
RETURNING id
"""

CLOSE_ATTEMPT = """
UPDATE job_attempts
SET finished_at = ?, outcome = ?, error_type = ?, error_message = ?, traceback = ?
WHERE job_id = ? AND attempt = ? AND finished_at IS NULL
"""

LAPSED_LEASES = """
SELECT id, attempts, max_attempts, worker_id FROM jobs INDEXED BY jobs_lease
WHERE state = 'running' AND lease_expires_at < ?
ORDER BY lease_expires_at
LIMIT ?
"""

RESCUE_JOB = """
UPDATE jobs
SET state = :state, updated_at = :now, finished_at = :finished_at,
    run_at = :now, worker_id = NULL, lease_expires_at = NULL,
    error_type = 'LeaseExpired', error_message = :message, traceback = NULL
WHERE id = :id AND state = 'running'
"""

SELECT_JOB = """
SELECT id, task, queue, priority, state, args, kwargs, attempts, max_attempts,
       timeout, run_at, created_at, updated_at, finished_at, worker_id,
       lease_expires_at, result, error_type, error_message, traceback
FROM jobs
"""


def list_statement(where: JobFilter) -> tuple[str, list[Any]]:
    """The statement listing jobs that match ``where``, newest first."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("state", where.state.value if where.state else None),
        ("queue", where.queue),
        ("task", where.task),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.before_id is not None:
        clauses.append("id < ?")
        params.append(where.before_id)

    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(where.limit)
    return f"{SELECT_JOB}{condition} ORDER BY id DESC LIMIT ?", params


COUNT_BY_STATE = "SELECT state, count(*) FROM jobs GROUP BY state"

COUNT_BY_STATE_IN_QUEUE = (
    "SELECT state, count(*) FROM jobs WHERE queue = ? GROUP BY state"
)

SELECT_ATTEMPTS = """
SELECT job_id, attempt, worker_id, started_at, finished_at, outcome,
       error_type, error_message, traceback
FROM job_attempts WHERE job_id = ? ORDER BY id
"""

SELECT_EVENTS = """
SELECT id, job_id, at, from_state, to_state, reason, actor
FROM job_events WHERE job_id = ? ORDER BY id
"""

UPSERT_WORKER = """
INSERT OR REPLACE INTO workers (id, host, pid, queues, concurrency, pool,
                                started_at, heartbeat_at, state, running_jobs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

BEAT_WORKER = """
UPDATE workers SET heartbeat_at = ?, running_jobs = ?, state = 'running'
WHERE id = ? AND state != 'stopped'
"""

STOP_WORKER = """
UPDATE workers SET heartbeat_at = ?, running_jobs = 0, state = 'stopped'
WHERE id = ?
"""

MARK_DEAD = """
UPDATE workers SET state = 'dead'
WHERE state = 'running' AND heartbeat_at < ?
RETURNING id
"""

SELECT_WORKERS = """
SELECT id, host, pid, queues, concurrency, pool, started_at, heartbeat_at,
       state, running_jobs
FROM workers ORDER BY started_at DESC, id
"""

PRUNABLE = """
SELECT id FROM jobs INDEXED BY jobs_finished
WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < ?
ORDER BY finished_at
LIMIT ?
"""
