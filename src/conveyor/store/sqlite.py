"""The SQLite store: the embedded default, one file shared by one machine.

Several processes share the file safely: WAL mode lets readers work beside
the one writer, a busy timeout makes a writer wait for its turn instead of
failing, and every write opens with ``BEGIN IMMEDIATE`` so two claimers can
never both read the same queued job before either writes.

Each thread gets its own connection (SQLite connections are not shared
between threads). ``synchronous=FULL`` is the default, so a committed job
survives a power cut; ``?synchronous=normal`` in the URL trades that for
speed (a crash of the machine, not of the process, may then lose the last
commits).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigurationError, MigrationError, StoreError
from ..records import (
    AttemptOutcome,
    AttemptRecord,
    ClaimedJob,
    EventRecord,
    JobFilter,
    JobRecord,
    NewJob,
    Outcome,
    Rescued,
    WorkerInfo,
)
from ..states import JobState
from . import _sqlite_sql as sql
from ._migrations import migrations_for
from ._outcomes import (
    UNCOUNTED,
    attempt_outcome_of,
    event_reason_of,
    job_state_of,
    keeps_error,
)
from .base import Store

#: How long a writer waits for the file lock before giving up, in ms.
BUSY_TIMEOUT_MS = 30_000

#: How often ``wait_for_work`` looks for commits by other processes, in s.
#: ``PRAGMA data_version`` is answered from memory, so this costs little.
WAKE_POLL_INTERVAL = 0.002

#: The oldest SQLite with everything the statements use (``->>``).
MIN_SQLITE = (3, 38, 0)

_SYNCHRONOUS_MODES = ("off", "normal", "full", "extra")


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _path_of(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    options = parse_qs(parts.query)
    synchronous = options.get("synchronous", ["full"])[0].lower()

    if not path or path == ":memory:":
        raise ConfigurationError(
            f"database URL {url!r} names no file; Conveyor shares the "
            "database between threads and processes, so use a file such as "
            "sqlite:///conveyor.db"
        )
    if synchronous not in _SYNCHRONOUS_MODES:
        raise ConfigurationError(
            f"synchronous={synchronous!r} in {url!r} is not allowed; "
            f"use one of {', '.join(_SYNCHRONOUS_MODES)}"
        )
    return path, synchronous


class SQLiteStore(Store):
    """A store in one SQLite file. See the module docstring for its settings."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            needed = ".".join(map(str, MIN_SQLITE))
            raise ConfigurationError(
                f"this Python links SQLite {sqlite3.sqlite_version}; Conveyor "
                f"needs SQLite {needed} or newer (RETURNING and JSON operators)"
            )
        self.url = url
        self.path, self._synchronous = _path_of(url)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._closed = False

    # -- connections ------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store was closed")
        try:
            # Each connection is used by one thread only; check_same_thread
            # is off so that ``close`` may close them all from any thread.
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {error}")

        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _switch_to_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            conn.close()
            raise StoreError(f"cannot set up SQLite database {self.path!r}: {error}")
        with self._lock:
            self._connections.append(conn)
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the file's write lock up front.

        Threads of this process queue on a lock of their own first: SQLite's
        busy handler would have them sleep in growing steps, polling the
        file, while a lock hands over the moment the writer commits.
        """
        conn = self._conn
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                # Whatever other processes commit from here on changes this
                # number, so ``wait_for_work`` misses no commit made between
                # this write and its wait.
                self._local.seen = conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as error:
                raise StoreError(f"cannot start a write on {self.path!r}: {error}")

            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(error, sqlite3.Error):
                    raise StoreError(f"SQLite write failed: {error}") from error
                raise

    def _read(self, statement: str, params: Any = ()) -> list[sqlite3.Row]:
        conn = self._conn
        conn.row_factory = sqlite3.Row
        try:
            rows: list[sqlite3.Row] = conn.execute(statement, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"SQLite read failed: {error}") from error
        finally:
            conn.row_factory = None
        return rows

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    # -- schema -----------------------------------------------------------

    def migrate(self) -> list[int]:
        applied = []

        with self._write() as conn:
            conn.execute(sql.CREATE_MIGRATIONS)
            done = {row[0] for row in conn.execute(sql.APPLIED_VERSIONS)}

            for migration in migrations_for(self.dialect):
                if migration.version in done:
                    continue
                self._apply(conn, migration.version, migration.sql)
                applied.append(migration.version)

        return applied

    def _apply(self, conn: sqlite3.Connection, version: int, script: str) -> None:
        # executescript would commit the open transaction, so statements are
        # run one by one inside it.
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(sql.RECORD_VERSION, (version, time.time()))
        except sqlite3.Error as error:
            raise MigrationError(f"migration {version} failed: {error}") from error

    def schema_version(self) -> int:
        exists = self._read(sql.MIGRATIONS_TABLE_EXISTS)
        if not exists:
            return 0

        rows = self._read(sql.SCHEMA_VERSION)
        return int(rows[0][0] or 0)

    # -- the hot path -----------------------------------------------------

    def enqueue(
        self,
        jobs: Sequence[NewJob],
        now: datetime,
        *,
        actor: str = "api",
        connection: Any = None,
    ) -> list[int]:
        if connection is not None:
            raise ConfigurationError(
                "the SQLite store cannot enqueue on an application's "
                "connection; pass connection=None"
            )
        if not jobs:
            return []

        at = _ts(now)
        rows = json.dumps([_job_row(job, at) for job in jobs])
        with self._write() as conn:
            # One statement for the whole batch. RETURNING gives no order,
            # but ids grow in insertion order, which is the batch's order.
            inserted = conn.execute(sql.INSERT_JOBS, {"rows": rows, "now": at})
            ids = sorted(row[0] for row in inserted)
            conn.executemany(
                sql.INSERT_EVENT,
                [(job_id, at, None, "queued", "enqueued", actor) for job_id in ids],
            )

        self._wakeup.set()
        return ids

    def claim(
        self,
        worker_id: str,
        queues: Sequence[str] | None,
        limit: int,
        lease: float,
        now: datetime,
    ) -> list[ClaimedJob]:
        if limit <= 0:
            return []

        at = _ts(now)
        statement, params = sql.claim_statement(queues)
        params.update(worker=worker_id, now=at, lease=at + lease, limit=limit)

        with self._write() as conn:
            rows = conn.execute(statement, params).fetchall()
            if rows:
                self._open_attempts(conn, worker_id, rows, at)

        # RETURNING gives no order; claims are handed out in claim order.
        rows.sort(key=lambda row: (-row[8], row[9], row[0]))
        return [ClaimedJob(*row[:8]) for row in rows]

    def _open_attempts(
        self, conn: sqlite3.Connection, worker_id: str, rows: list[Any], at: float
    ) -> None:
        conn.executemany(
            sql.INSERT_ATTEMPT, [(row[0], row[5], worker_id, at) for row in rows]
        )
        conn.executemany(
            sql.INSERT_EVENT,
            [(row[0], at, "queued", "running", "claimed", worker_id) for row in rows],
        )

    def heartbeat(
        self, worker_id: str, job_ids: Sequence[int], lease: float, now: datetime
    ) -> set[int]:
        if not job_ids:
            return set()

        at = _ts(now)
        held: set[int] = set()
        with self._write() as conn:
            for job_id in job_ids:
                row = conn.execute(
                    sql.EXTEND_LEASE, (at + lease, at, job_id, worker_id)
                ).fetchone()
                if row is not None:
                    held.add(int(row[0]))
        return held

    def finish(
        self, worker_id: str, outcomes: Sequence[Outcome], now: datetime
    ) -> list[int]:
        if not outcomes:
            return []

        at = _ts(now)
        with self._write() as conn:
            held = self._held(conn, worker_id, outcomes)
            accepted = [o for o in outcomes if held.pop(o.job_id, None) == o.attempt]
            conn.executemany(
                sql.FINISH_JOB, [_finish_row(o, worker_id, at) for o in accepted]
            )
            conn.executemany(sql.CLOSE_ATTEMPT, [_close_row(o, at) for o in accepted])
            conn.executemany(
                sql.INSERT_EVENT, [_event_row(o, worker_id, at) for o in accepted]
            )
        return [outcome.job_id for outcome in accepted]

    def _held(
        self, conn: sqlite3.Connection, worker_id: str, outcomes: Sequence[Outcome]
    ) -> dict[int, int]:
        """The attempt ``worker_id`` holds of each job, read under the write
        lock, so no other writer can change it before this transaction ends:
        the late-result guard, decided once for the whole batch."""
        ids = json.dumps([outcome.job_id for outcome in outcomes])
        rows = conn.execute(sql.HELD_ATTEMPTS, (ids, worker_id)).fetchall()
        return {job_id: attempt for job_id, attempt in rows}

    def rescue(self, now: datetime, *, actor: str, limit: int = 500) -> list[Rescued]:
        at = _ts(now)
        rescued = []

        with self._write() as conn:
            lapsed = conn.execute(sql.LAPSED_LEASES, (at, limit)).fetchall()
            for job_id, attempt, max_attempts, holder in lapsed:
                state = JobState.FAILED if attempt >= max_attempts else JobState.QUEUED
                self._rescue_one(conn, job_id, attempt, holder, state, at, actor)
                rescued.append(Rescued(job_id, attempt, holder, state))

        if rescued:
            self._wakeup.set()
        return rescued

    def _rescue_one(
        self,
        conn: sqlite3.Connection,
        job_id: int,
        attempt: int,
        holder: str | None,
        state: JobState,
        at: float,
        actor: str,
    ) -> None:
        message = f"the lease of worker {holder} lapsed before the attempt ended"
        final = state is JobState.FAILED
        conn.execute(
            sql.RESCUE_JOB,
            {
                "state": state.value,
                "now": at,
                "finished_at": at if final else None,
                "message": message,
                "id": job_id,
            },
        )
        conn.execute(
            sql.CLOSE_ATTEMPT,
            (
                at,
                AttemptOutcome.LOST.value,
                "LeaseExpired",
                message,
                None,
                job_id,
                attempt,
            ),
        )
        conn.execute(
            sql.INSERT_EVENT,
            (job_id, at, "running", state.value, "lease lapsed", actor),
        )

    # -- reading ----------------------------------------------------------

    def get_job(self, job_id: int) -> JobRecord | None:
        rows = self._read(sql.SELECT_JOB + " WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        statement, params = sql.list_statement(where)
        return [_job(row) for row in self._read(statement, params)]

    def count_jobs(self, queue: str | None = None) -> dict[JobState, int]:
        if queue is None:
            rows = self._read(sql.COUNT_BY_STATE)
        else:
            rows = self._read(sql.COUNT_BY_STATE_IN_QUEUE, (queue,))
        return {JobState(row[0]): int(row[1]) for row in rows}

    def list_attempts(self, job_id: int) -> list[AttemptRecord]:
        rows = self._read(sql.SELECT_ATTEMPTS, (job_id,))
        return [_attempt(row) for row in rows]

    def list_events(self, job_id: int) -> list[EventRecord]:
        rows = self._read(sql.SELECT_EVENTS, (job_id,))
        return [_event(row) for row in rows]

    # -- waiting ----------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        try:
            return self._wait(deadline)
        except sqlite3.ProgrammingError:  # closed while waiting
            return False

    def _wait(self, deadline: float) -> bool:
        conn = self._conn
        seen = getattr(self._local, "seen", None)
        if seen is None:
            seen = conn.execute("PRAGMA data_version").fetchone()[0]

        while not self._closed:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            self._local.seen = version
            if self._wakeup.is_set():
                self._wakeup.clear()
                return True
            if version != seen:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wakeup.wait(min(WAKE_POLL_INTERVAL, left))
        return False

    def wake(self) -> None:
        self._wakeup.set()

    # -- workers ----------------------------------------------------------

    def register_worker(self, worker: WorkerInfo) -> None:
        with self._write() as conn:
            conn.execute(
                sql.UPSERT_WORKER,
                (
                    worker.id,
                    worker.host,
                    worker.pid,
                    json.dumps(list(worker.queues)),
                    worker.concurrency,
                    worker.pool,
                    _ts(worker.started_at),
                    _ts(worker.heartbeat_at),
                    worker.state,
                    worker.running_jobs,
                ),
            )

    def beat_worker(self, worker_id: str, running_jobs: int, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(sql.BEAT_WORKER, (_ts(now), running_jobs, worker_id))

    def stop_worker(self, worker_id: str, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(sql.STOP_WORKER, (_ts(now), worker_id))

    def mark_dead_workers(self, stale_before: datetime) -> list[str]:
        with self._write() as conn:
            rows = conn.execute(sql.MARK_DEAD, (_ts(stale_before),)).fetchall()
        return sorted(row[0] for row in rows)

    def list_workers(self) -> list[WorkerInfo]:
        return [_worker(row) for row in self._read(sql.SELECT_WORKERS)]

    # -- housekeeping -----------------------------------------------------

    def prune(self, finished_before: datetime, *, limit: int = 1000) -> int:
        with self._write() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    sql.PRUNABLE, (_ts(finished_before), limit)
                ).fetchall()
            ]
            for table in ("job_events", "job_attempts"):
                conn.executemany(
                    f"DELETE FROM {table} WHERE job_id = ?", [(i,) for i in ids]
                )
            conn.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
        return len(ids)


def _job_row(job: NewJob, at: float) -> list[Any]:
    run_at = at if job.run_at is None else _ts(job.run_at)
    return [
        job.task,
        job.queue,
        job.priority,
        job.args_json,
        job.kwargs_json,
        job.max_attempts,
        job.timeout,
        run_at,
    ]


def _finish_row(outcome: Outcome, worker_id: str, at: float) -> dict[str, Any]:
    state = job_state_of(outcome.kind)
    error = outcome.error
    return {
        "state": state.value,
        "now": at,
        "finished_at": at if state.is_final else None,
        "run_at": at if outcome.run_at is None else _ts(outcome.run_at),
        "uncount": 1 if outcome.kind in UNCOUNTED else 0,
        "result": outcome.result_json,
        "keep_error": keeps_error(outcome),
        "error_type": error.type if error else None,
        "error_message": error.message if error else None,
        "traceback": error.traceback if error else None,
        "id": outcome.job_id,
        "worker": worker_id,
        "attempt": outcome.attempt,
    }


def _close_row(outcome: Outcome, at: float) -> tuple[Any, ...]:
    error = outcome.error
    return (
        at,
        attempt_outcome_of(outcome).value,
        error.type if error else None,
        error.message if error else None,
        error.traceback if error else None,
        outcome.job_id,
        outcome.attempt,
    )


def _event_row(outcome: Outcome, worker_id: str, at: float) -> tuple[Any, ...]:
    state = job_state_of(outcome.kind).value
    return (outcome.job_id, at, "running", state, event_reason_of(outcome), worker_id)


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Turn on WAL mode, waiting out other processes doing the same.

    The switch needs a moment of exclusive access and SQLite does not apply
    the busy timeout to it, so a fresh file opened by several processes at
    once answers "database is locked" to all but one; the others retry.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        task=row["task"],
        queue=row["queue"],
        priority=row["priority"],
        state=JobState(row["state"]),
        args_json=row["args"],
        kwargs_json=row["kwargs"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        timeout=row["timeout"],
        run_at=datetime.fromtimestamp(row["run_at"], UTC),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
        finished_at=_dt(row["finished_at"]),
        worker_id=row["worker_id"],
        lease_expires_at=_dt(row["lease_expires_at"]),
        result_json=row["result"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        traceback=row["traceback"],
    )


def _attempt(row: sqlite3.Row) -> AttemptRecord:
    outcome = row["outcome"]
    return AttemptRecord(
        job_id=row["job_id"],
        attempt=row["attempt"],
        worker_id=row["worker_id"],
        started_at=datetime.fromtimestamp(row["started_at"], UTC),
        finished_at=_dt(row["finished_at"]),
        outcome=None if outcome is None else AttemptOutcome(outcome),
        error_type=row["error_type"],
        error_message=row["error_message"],
        traceback=row["traceback"],
    )


def _event(row: sqlite3.Row) -> EventRecord:
    source = row["from_state"]
    return EventRecord(
        id=row["id"],
        job_id=row["job_id"],
        at=datetime.fromtimestamp(row["at"], UTC),
        from_state=None if source is None else JobState(source),
        to_state=JobState(row["to_state"]),
        reason=row["reason"],
        actor=row["actor"],
    )


def _worker(row: sqlite3.Row) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=tuple(json.loads(row["queues"])),
        concurrency=row["concurrency"],
        pool=row["pool"],
        started_at=datetime.fromtimestamp(row["started_at"], UTC),
        heartbeat_at=datetime.fromtimestamp(row["heartbeat_at"], UTC),
        state=row["state"],
        running_jobs=row["running_jobs"],
    )
