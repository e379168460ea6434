"""Raw limits: what plain SQL from one Python process does, with no Conveyor code.

Each store gets a minimal ``raw_jobs`` table shaped like Conveyor's ``jobs``
(same columns that matter, same partial claim index, no attempts or events
tables, no other index), and five figures, each the median of a few runs on
a freshly created table:

- (a) ``insert_one``: one INSERT per transaction;
- (b) ``insert_many``: executemany of many rows in one transaction;
- (c) ``copy``: PostgreSQL's COPY of many rows (the bulk limit there);
- (d) ``claim_one``: claim one job (UPDATE ... RETURNING) in one
  transaction, then complete it in another;
- (e) ``claim_batch``: the same, a batch of jobs per transaction.

The claim and the completion commit separately, as they must in any queue
whose jobs run between the two. PostgreSQL connections run in autocommit
with prepared statements, the cheapest way to send one-statement
transactions; SQLite uses the pragmas Conveyor sets and ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from .targets import Database

#: The task name written into every raw row, as Conveyor would write it.
TASK = "benchmarks.bench_tasks.noop"

#: Seconds a raw claim's lease lasts (only written, never read).
LEASE = 30.0

_SQLITE_TABLE = """
CREATE TABLE raw_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    kwargs           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_at           REAL    NOT NULL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    finished_at      REAL,
    worker_id        TEXT,
    lease_expires_at REAL,
    result           TEXT
)
"""

_PG_TABLE = """
CREATE TABLE raw_jobs (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    kwargs           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_at           TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    worker_id        TEXT,
    lease_expires_at TIMESTAMPTZ,
    result           TEXT
)
"""

_CLAIM_INDEX = """
CREATE INDEX raw_jobs_claim ON raw_jobs (priority DESC, run_at, id)
    WHERE state = 'queued'
"""

_COLUMNS = "task, queue, priority, state, args, kwargs, run_at, created_at, updated_at"

# SQLite has no SKIP LOCKED: BEGIN IMMEDIATE already serialises claimers.
_SQLITE_CLAIM = """
UPDATE raw_jobs
SET state = 'running', attempts = attempts + 1, worker_id = ?,
    lease_expires_at = ?, updated_at = ?
WHERE id IN (
    SELECT id FROM raw_jobs INDEXED BY raw_jobs_claim
    WHERE state = 'queued' AND run_at <= ?
    ORDER BY priority DESC, run_at, id
    LIMIT ?
)
RETURNING id, task, args, kwargs, attempts
"""

_SQLITE_COMPLETE = """
UPDATE raw_jobs
SET state = 'succeeded', finished_at = ?, updated_at = ?, result = 'null',
    worker_id = NULL, lease_expires_at = NULL
WHERE id IN ({ids})
"""

_PG_CLAIM = """
UPDATE raw_jobs
SET state = 'running', attempts = attempts + 1, worker_id = %(worker)s,
    lease_expires_at = %(lease)s, updated_at = %(now)s
WHERE id IN (
    SELECT id FROM raw_jobs
    WHERE state = 'queued' AND run_at <= %(now)s
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id, task, args, kwargs, attempts
"""

_PG_COMPLETE = """
UPDATE raw_jobs
SET state = 'succeeded', finished_at = %(now)s, updated_at = %(now)s,
    result = 'null', worker_id = NULL, lease_expires_at = NULL
WHERE id = ANY(%(ids)s::bigint[])
"""


class Limits:
    """Raw figures on one database; ``rate`` runs one on a fresh table.

    >>> with Limits(db, batch=100) as limits:
    ...     limits.rate("claim_batch", 10_000)
    """

    def __init__(self, db: Database, batch: int) -> None:
        self.raw: _RawSQLite | _RawPostgres
        if db.dialect == "sqlite":
            self.raw = _RawSQLite(db, batch)
        else:
            self.raw = _RawPostgres(db, batch)

    def __enter__(self) -> Limits:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.raw.close()

    @property
    def figures(self) -> tuple[str, ...]:
        """The figures this store has: every one but COPY on SQLite."""
        names = ("insert_one", "insert_many", "copy", "claim_one", "claim_batch")
        return tuple(name for name in names if hasattr(self.raw, name))

    def rate(self, figure: str, count: int) -> float:
        """Jobs per second of one run of ``figure`` over ``count`` jobs."""
        run: Callable[[int], float] = getattr(self.raw, figure)
        self.raw.reset()
        return count / run(count)

    def median(self, figure: str, count: int, repeats: int) -> float:
        """The median rate of ``repeats`` runs."""
        return statistics.median(self.rate(figure, count) for _ in range(repeats))


class _RawSQLite:
    """Raw SQL on one SQLite connection, set up as Conveyor sets its own."""

    def __init__(self, db: Database, batch: int) -> None:
        assert db.path is not None
        self.batch = batch
        self.conn = sqlite3.connect(db.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {db.synchronous}")

    def reset(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS raw_jobs")
        self.conn.execute(_SQLITE_TABLE)
        self.conn.execute(_CLAIM_INDEX)

    def close(self) -> None:
        self.conn.close()

    def _row(self) -> tuple[Any, ...]:
        now = time.time()
        return (TASK, "default", 0, "queued", "[]", "{}", now, now, now)

    def _insert(self) -> str:
        return f"INSERT INTO raw_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

    def insert_one(self, count: int) -> float:
        statement = self._insert()
        started = time.perf_counter()
        for _ in range(count):
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(statement, self._row())
            self.conn.execute("COMMIT")
        return time.perf_counter() - started

    def insert_many(self, count: int) -> float:
        statement = self._insert()
        started = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(statement, (self._row() for _ in range(count)))
        self.conn.execute("COMMIT")
        return time.perf_counter() - started

    def claim_one(self, count: int) -> float:
        return self._drain(count, 1)

    def claim_batch(self, count: int) -> float:
        return self._drain(count, self.batch)

    def _drain(self, count: int, batch: int) -> float:
        self.insert_many(count)
        done = 0
        started = time.perf_counter()
        while True:
            now = time.time()
            self.conn.execute("BEGIN IMMEDIATE")
            rows = self.conn.execute(
                _SQLITE_CLAIM, ("raw", now + LEASE, now, now, batch)
            ).fetchall()
            self.conn.execute("COMMIT")
            if not rows:
                break

            ids = [row[0] for row in rows]
            complete = _SQLITE_COMPLETE.format(ids=", ".join("?" * len(ids)))
            now = time.time()
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(complete, (now, now, *ids))
            self.conn.execute("COMMIT")
            done += len(ids)
        assert done == count, f"raw drain completed {done} of {count} jobs"
        return time.perf_counter() - started


class _RawPostgres:
    """Raw SQL on one autocommit PostgreSQL connection in the bench schema."""

    def __init__(self, db: Database, batch: int) -> None:
        assert db.conninfo is not None and db.schema is not None
        self.batch = batch
        self.conn = psycopg.connect(db.conninfo, autocommit=True, prepare_threshold=0)
        self.conn.execute(
            sql.SQL("SET search_path = {}").format(sql.Identifier(db.schema))
        )

    def reset(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS raw_jobs")
        self.conn.execute(_PG_TABLE)
        self.conn.execute(_CLAIM_INDEX)

    def close(self) -> None:
        self.conn.close()

    def _row(self) -> tuple[Any, ...]:
        now = datetime.now(UTC)
        return (TASK, "default", 0, "queued", "[]", "{}", now, now, now)

    def _insert(self) -> str:
        values = ", ".join(["%s"] * 9)
        return f"INSERT INTO raw_jobs ({_COLUMNS}) VALUES ({values})"

    def insert_one(self, count: int) -> float:
        statement = self._insert()
        started = time.perf_counter()
        for _ in range(count):
            self.conn.execute(statement, self._row())
        return time.perf_counter() - started

    def insert_many(self, count: int) -> float:
        statement = self._insert()
        started = time.perf_counter()
        with self.conn.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(statement, [self._row() for _ in range(count)])
        return time.perf_counter() - started

    def copy(self, count: int) -> float:
        started = time.perf_counter()
        with (
            self.conn.transaction(),
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY raw_jobs ({_COLUMNS}) FROM STDIN") as copy,
        ):
            for _ in range(count):
                copy.write_row(self._row())
        return time.perf_counter() - started

    def claim_one(self, count: int) -> float:
        return self._drain(count, 1)

    def claim_batch(self, count: int) -> float:
        return self._drain(count, self.batch)

    def _drain(self, count: int, batch: int) -> float:
        self.copy(count)
        self.conn.execute("ANALYZE raw_jobs")
        done = 0
        started = time.perf_counter()
        while True:
            now = datetime.now(UTC)
            params = {
                "worker": "raw",
                "lease": now + timedelta(seconds=LEASE),
                "now": now,
                "limit": batch,
            }
            rows = self.conn.execute(_PG_CLAIM, params).fetchall()
            if not rows:
                break

            ids = [row[0] for row in rows]
            now = datetime.now(UTC)
            self.conn.execute(_PG_COMPLETE, {"now": now, "ids": ids})
            done += len(ids)
        assert done == count, f"raw drain completed {done} of {count} jobs"
        return time.perf_counter() - started
