"""Raw SQL on Conveyor's own tables: watching a drain, and seeding old jobs.

The benchmarks poll for the end of a drain many times a second, so the
question they ask must cost next to nothing even with 100,000 jobs in the
table: "is any job still queued or running?" is answered from the
``jobs_state`` index in one probe, where ``Store.count_jobs`` would count
every row. One connection is kept open for the whole measurement.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from .targets import Database

_UNFINISHED = """
SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('queued', 'running')),
       EXISTS (SELECT 1 FROM jobs WHERE state = 'failed')
"""

_PENDING = "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"

_FINISH_TIMES = """
SELECT min(finished_at), max(finished_at) FROM jobs WHERE state = 'succeeded'
"""

# Every job claimed (or finished) in one store call shares that call's
# ``at``, so counting distinct times counts transactions.
_BATCH_SIZES = """
SELECT reason, count(*), count(DISTINCT at) FROM job_events
WHERE reason IN ('claimed', 'succeeded') GROUP BY reason
"""

_SQLITE_FINISHED = """
INSERT INTO jobs (task, queue, priority, state, args, kwargs, attempts,
                  max_attempts, run_at, created_at, updated_at, finished_at,
                  result)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
SELECT :task, 'default', 0, 'succeeded', '[]', '{}', 1, 3,
       :start + i * :step, :start + i * :step, :start + i * :step + 0.001,
       :start + i * :step + 0.001, 'null'
FROM n
"""

_PG_FINISHED = """
INSERT INTO jobs (task, queue, priority, state, args, kwargs, attempts,
                  max_attempts, run_at, created_at, updated_at, finished_at,
                  result)
SELECT %(task)s, 'default', 0, 'succeeded', '[]', '{}', 1, 3, t, t,
       t + interval '1 ms', t + interval '1 ms', 'null'
FROM generate_series(1, %(count)s) AS g(i),
     LATERAL (SELECT %(start)s + g.i * %(step)s * interval '1 s') AS x(t)
"""

#: Seconds between two seeded finished jobs: a million span about 3 hours.
SEED_SPACING = 0.01


class JobFailed(RuntimeError):
    """A benchmark job failed: the figures would not mean what they say."""


class Tables:
    """One raw connection to a benchmark database's Conveyor tables."""

    def __init__(self, db: Database) -> None:
        self.dialect = db.dialect
        self._conn: Any
        if db.dialect == "sqlite":
            assert db.path is not None
            self._conn = sqlite3.connect(db.path, isolation_level=None)
            return

        assert db.conninfo is not None and db.schema is not None
        self._conn = psycopg.connect(db.conninfo, autocommit=True)
        self._conn.execute(
            sql.SQL("SET search_path = {}").format(sql.Identifier(db.schema))
        )

    def __enter__(self) -> Tables:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._conn.close()

    def _one(self, statement: str) -> tuple[Any, ...]:
        row: tuple[Any, ...] = self._conn.execute(statement).fetchone()
        return row

    def drained(self) -> bool:
        """True once no job is queued or running; raises if any job failed."""
        unfinished, failed = self._one(_UNFINISHED)
        if failed:
            raise JobFailed("a benchmark job failed; see the workers' logs")
        return not unfinished

    def pending(self) -> int:
        """How many jobs are queued or running."""
        return int(self._one(_PENDING)[0])

    def finish_times(self) -> tuple[float, float]:
        """Epoch seconds of the first and the last job to succeed."""
        first, last = self._one(_FINISH_TIMES)
        if isinstance(first, datetime):
            return first.timestamp(), last.timestamp()
        return float(first), float(last)

    def batch_sizes(self) -> dict[str, float]:
        """Mean jobs per claim and per finish transaction."""
        rows = self._conn.execute(_BATCH_SIZES).fetchall()
        return {f"{reason}_per_txn": count / txns for reason, count, txns in rows}

    def insert_finished(self, count: int, task: str) -> float:
        """Insert ``count`` succeeded jobs in one statement; return seconds taken.

        Only ``jobs`` is filled: a claim and a finish touch the attempts and
        events of their own jobs alone, by index. PostgreSQL then runs
        VACUUM ANALYZE, as autovacuum would long before a table held so many.
        """
        started = time.perf_counter()
        start = time.time() - count * SEED_SPACING - 60
        params = {"count": count, "task": task, "step": SEED_SPACING}

        if self.dialect == "sqlite":
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(_SQLITE_FINISHED, {**params, "start": start})
            self._conn.execute("COMMIT")
        else:
            moment = datetime.fromtimestamp(start, UTC)
            self._conn.execute(_PG_FINISHED, {**params, "start": moment})
            self._conn.execute("VACUUM ANALYZE jobs")
        return time.perf_counter() - started
