"""The PostgreSQL store: the production engine, shared by many machines.

``PostgresStore`` fulfils ``conveyor.store.base.Store`` with psycopg 3 and a
connection pool. The statements live in ``_pg_sql``; the LISTEN side of
``wait_for_work`` lives in ``_pg_listen``.

The database URL is a libpq URL, plus three parameters of Conveyor's own,
removed before connecting:

- ``schema=NAME`` keeps every table in that schema (``migrate`` creates it);
- ``pool_min=N`` and ``pool_max=N`` size the connection pool.

Every psycopg error is raised as ``StoreError`` (``MigrationError`` from
``migrate``) with the cause chained. A connection the server dropped is
replaced: the pool checks a connection idle for more than ``TRUST_RECENT``
seconds before lending it, and discards one that failed, so operations
succeed again once the server is back.
"""

from __future__ import annotations

import json
import logging
import re
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

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
from . import _pg_sql as q
from ._migrations import migrations_for
from ._outcomes import (
    UNCOUNTED,
    attempt_outcome_of,
    event_reason_of,
    job_state_of,
    keeps_error,
)
from ._pg_listen import Listener
from .base import Store

logger = logging.getLogger(__name__)

#: Seconds an operation waits for a free pooled connection (or for the
#: server to accept a new one) before failing with ``StoreError``.
POOL_TIMEOUT = 10.0

#: Seconds the one connection made to learn why the pool lent none may take.
PROBE_TIMEOUT = 3

#: The advisory lock ``migrate`` holds: "conveyor" spelt in ASCII hex.
MIGRATION_LOCK_KEY = 0x636F6E7665796F72

#: Prepare every statement on first use: the hot path repeats the same few
#: statements, and preparing costs no extra round trip in psycopg.
PREPARE_THRESHOLD = 0

#: Seconds after its last use during which a pooled connection is lent
#: without a check (see ``_Freshness``).
TRUST_RECENT = 1.0

#: ``application_name`` on the server, unless the URL sets one.
APPLICATION_NAME = "conveyor"

_OWN_PARAMETERS = ("schema", "pool_min", "pool_max")
# Short enough that the notify channel (conveyor_jobs_NAME) stays within
# PostgreSQL's 63-byte limit on names.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,48}")
_Row = tuple[Any, ...]
_T = TypeVar("_T")


class PostgresStore(Store):
    """Jobs in PostgreSQL, claimed with ``FOR UPDATE SKIP LOCKED``.

    >>> store = PostgresStore("postgresql://app@db.internal/app?schema=conveyor")
    >>> store.migrate()
    [1]
    """

    dialect = "postgresql"
    pushes_wakeups = True
    accepts_connection = True

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        conninfo, own = _split_url(url)
        self._conninfo = conninfo
        self._schema = _schema_from(own)
        min_size = _size_from(own, "pool_min", min_size)
        max_size = _size_from(own, "pool_max", max_size)
        _check_sizes(min_size, max_size)
        app_name = _application_name(conninfo)
        self._app_name = app_name
        self._max_size = max_size

        prefix = "" if self._schema is None else f'"{self._schema}".'
        self._enqueue_sql = q.ENQUEUE_TEMPLATE.format(schema=prefix)
        self._channel = q.channel_for(self._schema)

        self._freshness = _Freshness()
        self._pool = self._open_pool(conninfo, app_name, min_size, max_size)
        self._listener = Listener(
            conninfo, self._channel, application_name=f"{app_name} listen"
        )

    # -- schema -----------------------------------------------------------

    def migrate(self) -> list[int]:
        applied: list[int] = []

        with self._transaction("migrate the schema", MigrationError) as conn:
            conn.execute(q.LOCK_MIGRATIONS, {"key": MIGRATION_LOCK_KEY})
            self._create_schema(conn)
            conn.execute(q.CREATE_MIGRATIONS_TABLE, prepare=False)
            done = {row[0] for row in conn.execute(q.APPLIED_VERSIONS)}

            for migration in migrations_for(self.dialect):
                if migration.version in done:
                    continue
                conn.execute(migration.sql, prepare=False)
                conn.execute(q.RECORD_MIGRATION, {"version": migration.version})
                applied.append(migration.version)

        for version in applied:
            logger.info("Applied PostgreSQL schema version %d.", version)
        return applied

    def schema_version(self) -> int:
        with self._transaction("read the schema version") as conn:
            exists = _one(conn.execute(q.MIGRATIONS_TABLE_EXISTS).fetchone())
            if not exists:
                return 0
            return int(_one(conn.execute(q.SCHEMA_VERSION).fetchone()))

    # -- the hot path -----------------------------------------------------

    def enqueue(
        self,
        jobs: Sequence[NewJob],
        now: datetime,
        *,
        actor: str = "api",
        connection: Any = None,
    ) -> list[int]:
        if not jobs:
            return []
        params = _enqueue_params(jobs, now, actor)
        params["channel"] = self._channel

        if connection is not None:
            return self._enqueue_on(connection, params)

        rows = self._fetch("enqueue jobs", self._enqueue_sql, params)
        return [row[0] for row in rows]

    def claim(
        self,
        worker_id: str,
        queues: Sequence[str] | None,
        limit: int,
        lease: float,
        now: datetime,
    ) -> list[ClaimedJob]:
        if limit < 1:
            return []
        query = q.CLAIM_ANY_QUEUE if queues is None else q.CLAIM_FROM_QUEUES
        params = {
            "worker_id": worker_id,
            "queues": None if queues is None else list(queues),
            "limit": limit,
            "lease_until": _lease_until(now, lease),
            "now": now,
        }

        rows = self._fetch("claim jobs", query, params)
        return [ClaimedJob(*row) for row in rows]

    def heartbeat(
        self, worker_id: str, job_ids: Sequence[int], lease: float, now: datetime
    ) -> set[int]:
        if not job_ids:
            return set()
        params = {
            "worker_id": worker_id,
            "job_ids": list(job_ids),
            "lease_until": _lease_until(now, lease),
            "now": now,
        }

        rows = self._fetch("extend leases", q.HEARTBEAT, params)
        return {row[0] for row in rows}

    def finish(
        self, worker_id: str, outcomes: Sequence[Outcome], now: datetime
    ) -> list[int]:
        if not outcomes:
            return []
        params = _finish_params(outcomes, now)
        params.update(worker_id=worker_id, now=now)

        rows = self._fetch("record finished attempts", q.FINISH, params)
        return [row[0] for row in rows]

    def rescue(self, now: datetime, *, actor: str, limit: int = 500) -> list[Rescued]:
        if limit < 1:
            return []
        params = {
            "now": now,
            "actor": actor,
            "limit": limit,
            "channel": self._channel,
        }

        rows = self._fetch("rescue lapsed jobs", q.RESCUE, params)
        return [
            Rescued(job_id, attempt, worker_id, JobState(state))
            for job_id, attempt, worker_id, state in rows
        ]

    # -- reading ----------------------------------------------------------

    def get_job(self, job_id: int) -> JobRecord | None:
        rows = self._fetch("read a job", q.GET_JOB, {"job_id": job_id})
        return _job_record(rows[0]) if rows else None

    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        if where.limit < 1:
            raise ConfigurationError(
                f"JobFilter.limit={where.limit!r} is not allowed; use 1 or more"
            )
        params = {
            "state": None if where.state is None else where.state.value,
            "queue": where.queue,
            "task": where.task,
            "before_id": where.before_id,
            "limit": where.limit,
        }
        conditions = [
            condition
            for field, condition in q.JOB_FILTERS.items()
            if params[field] is not None
        ]
        clause = "WHERE " + " AND ".join(conditions) if conditions else ""

        query = q.LIST_JOBS_TEMPLATE.format(where=clause)
        return [_job_record(row) for row in self._fetch("list jobs", query, params)]

    def count_jobs(self, queue: str | None = None) -> dict[JobState, int]:
        query = q.COUNT_JOBS if queue is None else q.COUNT_JOBS_IN_QUEUE
        rows = self._fetch("count jobs", query, {"queue": queue})
        return {JobState(state): count for state, count in rows}

    def list_attempts(self, job_id: int) -> list[AttemptRecord]:
        rows = self._fetch("list attempts", q.LIST_ATTEMPTS, {"job_id": job_id})
        return [_attempt_record(row) for row in rows]

    def list_events(self, job_id: int) -> list[EventRecord]:
        rows = self._fetch("list events", q.LIST_EVENTS, {"job_id": job_id})
        return [
            EventRecord(
                event_id, job, at, _optional(JobState, source), JobState(target), *rest
            )
            for event_id, job, at, source, target, *rest in rows
        ]

    # -- waiting ----------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        return self._listener.wait(timeout)

    def wake(self) -> None:
        self._listener.wake()

    # -- workers ----------------------------------------------------------

    def register_worker(self, worker: WorkerInfo) -> None:
        params = {
            "id": worker.id,
            "host": worker.host,
            "pid": worker.pid,
            "queues": json.dumps(list(worker.queues)),
            "concurrency": worker.concurrency,
            "pool": worker.pool,
            "started_at": worker.started_at,
            "heartbeat_at": worker.heartbeat_at,
            "state": worker.state,
            "running_jobs": worker.running_jobs,
        }
        self._run("register a worker", q.REGISTER_WORKER, params)

    def beat_worker(self, worker_id: str, running_jobs: int, now: datetime) -> None:
        params = {"worker_id": worker_id, "running_jobs": running_jobs, "now": now}
        self._run("record a worker heartbeat", q.BEAT_WORKER, params)

    def stop_worker(self, worker_id: str, now: datetime) -> None:
        params = {"worker_id": worker_id, "now": now}
        self._run("record a stopped worker", q.STOP_WORKER, params)

    def mark_dead_workers(self, stale_before: datetime) -> list[str]:
        params = {"stale_before": stale_before}
        rows = self._fetch("mark dead workers", q.MARK_DEAD_WORKERS, params)
        return sorted(row[0] for row in rows)

    def list_workers(self) -> list[WorkerInfo]:
        rows = self._fetch("list workers", q.LIST_WORKERS, {})
        return [
            WorkerInfo(worker_id, host, pid, tuple(json.loads(queues)), *rest)
            for worker_id, host, pid, queues, *rest in rows
        ]

    # -- housekeeping -----------------------------------------------------

    def prune(self, finished_before: datetime, *, limit: int = 1000) -> int:
        if limit < 1:
            return 0
        params = {"finished_before": finished_before, "limit": limit}

        rows = self._fetch("prune finished jobs", q.PRUNE, params)
        return int(rows[0][0])

    def close(self) -> None:
        self._listener.close()
        self._pool.close()

    # -- connections ------------------------------------------------------

    @contextmanager
    def _connection(
        self, action: str, error: type[StoreError] = StoreError
    ) -> Iterator[psycopg.Connection[_Row]]:
        """Lend a pooled connection in autocommit mode.

        Every operation of the hot path is one statement, which PostgreSQL
        runs as a transaction of its own: sending BEGIN and COMMIT around
        it would cost two more round trips for nothing.
        """
        with _store_errors(action, error):
            try:
                with self._pool.connection() as conn:
                    yield conn
                    # Noted here, not in the pool's reset hook: with a hook
                    # the pool hands every returned connection to a
                    # background thread, a costly detour on the hot path.
                    self._freshness.returned(conn)
            except PoolTimeout as exc:
                raise error(f"cannot {action}: {self._why_none_lent()}") from exc

    @contextmanager
    def _transaction(
        self, action: str, error: type[StoreError] = StoreError
    ) -> Iterator[psycopg.Connection[_Row]]:
        """Lend a pooled connection for one transaction of several statements."""
        with self._connection(action, error) as conn, conn.transaction():
            yield conn

    def _why_none_lent(self) -> str:
        """Why the pool lent no connection in time, found with one connection.

        The pool's own error says only that it waited; the server's refusal
        (refused, unknown host, bad password) is what the reader needs.
        """
        try:
            probe = psycopg.Connection.connect(
                self._conninfo,
                connect_timeout=PROBE_TIMEOUT,
                application_name=f"{self._app_name} probe",
            )
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            return f"PostgreSQL accepted no connection in {POOL_TIMEOUT:g} s: {reason}"

        probe.close()
        return (
            f"every pooled connection stayed busy for {POOL_TIMEOUT:g} s "
            f"(pool_max={self._max_size}); raise pool_max or make transactions "
            "shorter"
        )

    def _fetch(self, action: str, query: str, params: dict[str, Any]) -> list[_Row]:
        with self._connection(action) as conn:
            return conn.execute(query, params).fetchall()

    def _run(self, action: str, query: str, params: dict[str, Any]) -> None:
        with self._connection(action) as conn:
            conn.execute(query, params)

    def _enqueue_on(self, connection: Any, params: dict[str, Any]) -> list[int]:
        """Enqueue in the caller's transaction, leaving commit to the caller."""
        if not isinstance(connection, psycopg.Connection):
            raise ConfigurationError(
                f"connection={connection!r} is not usable here; pass an open "
                "psycopg 3 Connection (psycopg.Connection)"
            )

        with (
            _store_errors("enqueue jobs on the given connection", StoreError),
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            rows = cursor.execute(self._enqueue_sql, params).fetchall()
        return [row[0] for row in rows]

    def _open_pool(
        self, conninfo: str, app_name: str, min_size: int, max_size: int
    ) -> ConnectionPool[psycopg.Connection[_Row]]:
        """Open the pool; its connections are made in the background."""
        return ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "prepare_threshold": PREPARE_THRESHOLD,
                "application_name": app_name,
                "autocommit": True,
            },
            configure=self._configure,
            check=self._freshness.check,
            timeout=POOL_TIMEOUT,
            name="conveyor",
            open=True,
        )

    def _configure(self, conn: psycopg.Connection[_Row]) -> None:
        """Set a new pooled connection's time zone and search_path."""
        search_path = None if self._schema is None else f'"{self._schema}"'
        conn.execute(q.CONFIGURE_SESSION, {"search_path": search_path}, prepare=False)
        conn.commit()

    def _create_schema(self, conn: psycopg.Connection[_Row]) -> None:
        # Looked up first: CREATE SCHEMA IF NOT EXISTS still needs the CREATE
        # privilege, which a role given a ready-made schema may lack.
        if self._schema is None:
            return
        if _one(conn.execute(q.SCHEMA_EXISTS, {"schema": self._schema}).fetchone()):
            return
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(self._schema)
            )
        )


class _Freshness:
    """Checks a pooled connection before lending it, unless it was just used.

    A connection the server dropped (a restart, ``pg_terminate_backend``)
    must not be lent, so the pool checks each one with a round trip. On the
    hot path that round trip would double the cost of every claim; a
    connection returned moments ago is alive in all likelihood, and if it
    is not, the operation fails with ``StoreError`` and the next one gets a
    fresh connection.
    """

    def __init__(self) -> None:
        self._returned: weakref.WeakKeyDictionary[Any, float] = (
            weakref.WeakKeyDictionary()
        )

    def returned(self, conn: psycopg.Connection[_Row]) -> None:
        self._returned[conn] = time.monotonic()

    def check(self, conn: psycopg.Connection[_Row]) -> None:
        last = self._returned.get(conn)
        if last is not None and time.monotonic() - last < TRUST_RECENT:
            return
        ConnectionPool.check_connection(conn)


# -- errors ------------------------------------------------------------------


@contextmanager
def _store_errors(action: str, error: type[StoreError]) -> Iterator[None]:
    """Raise every psycopg error inside as ``error``, naming ``action``."""
    try:
        yield
    except psycopg.errors.UndefinedTable as exc:
        raise error(
            f"cannot {action}: Conveyor's tables are missing ({exc}); "
            "run `conveyor migrate` first"
        ) from exc
    except psycopg.Error as exc:
        raise error(f"cannot {action}: PostgreSQL error: {exc}") from exc


# -- parameters --------------------------------------------------------------


def _enqueue_params(
    jobs: Sequence[NewJob], now: datetime, actor: str
) -> dict[str, Any]:
    """The jobs as one JSON document, for ``json_to_recordset``."""
    rows = [
        {
            "task": job.task,
            "queue": job.queue,
            "priority": job.priority,
            "args": job.args_json,
            "kwargs": job.kwargs_json,
            "max_attempts": job.max_attempts,
            "timeout": job.timeout,
            "run_at": None if job.run_at is None else job.run_at.isoformat(),
        }
        for job in jobs
    ]
    return {"jobs": json.dumps(rows), "now": now, "actor": actor}


def _finish_params(outcomes: Sequence[Outcome], now: datetime) -> dict[str, Any]:
    """The outcomes as one JSON document, for ``json_to_recordset``.

    The rules are shared with the SQLite store (``_outcomes``).
    """
    at = now.isoformat()
    rows = []
    for outcome in outcomes:
        error = outcome.error
        rows.append(
            {
                "job_id": outcome.job_id,
                "attempt": outcome.attempt,
                "state": job_state_of(outcome.kind).value,
                "outcome": attempt_outcome_of(outcome).value,
                "reason": event_reason_of(outcome),
                "uncounted": 1 if outcome.kind in UNCOUNTED else 0,
                "run_at": outcome.run_at.isoformat() if outcome.run_at else at,
                "result": outcome.result_json,
                "keep_error": keeps_error(outcome),
                "error_type": error.type if error else None,
                "error_message": error.message if error else None,
                "traceback": error.traceback if error else None,
            }
        )
    return {
        "outcomes": json.dumps(rows),
        "job_ids": [outcome.job_id for outcome in outcomes],
    }


def _lease_until(now: datetime, lease: float) -> datetime:
    return now + timedelta(seconds=lease)


# -- rows --------------------------------------------------------------------


def _job_record(row: _Row) -> JobRecord:
    values = list(row)
    values[4] = JobState(values[4])
    return JobRecord(*values)


def _attempt_record(row: _Row) -> AttemptRecord:
    values = list(row)
    values[5] = _optional(AttemptOutcome, values[5])
    return AttemptRecord(*values)


def _optional(make: Callable[[str], _T], value: str | None) -> _T | None:
    return None if value is None else make(value)


def _one(row: _Row | None) -> Any:
    """The single value of a one-row, one-column answer."""
    assert row is not None
    return row[0]


# -- the URL -----------------------------------------------------------------


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """Split Conveyor's own query parameters from the libpq URL."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    own = {key: value for key, value in pairs if key in _OWN_PARAMETERS}
    rest = [(key, value) for key, value in pairs if key not in _OWN_PARAMETERS]

    query = urlencode(rest, quote_via=quote)
    return urlunsplit(parts._replace(query=query)), own


def _application_name(conninfo: str) -> str:
    """The URL's ``application_name``, or Conveyor's own."""
    try:
        names = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"the PostgreSQL database URL is not valid ({str(exc).strip()}); use "
            "postgresql://user@host:port/dbname"
        ) from exc

    return str(names.get("application_name") or APPLICATION_NAME)


def _schema_from(own: dict[str, str]) -> str | None:
    schema = own.get("schema")
    if schema is None or _SCHEMA_NAME.fullmatch(schema):
        return schema
    raise ConfigurationError(
        f"database URL parameter schema={schema!r} is not allowed; use a "
        "lowercase name of letters, digits and _ (up to 49), not starting "
        "with a digit"
    )


def _size_from(own: dict[str, str], name: str, default: int) -> int:
    text = own.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(
            f"database URL parameter {name}={text!r} is not allowed; use a "
            "whole number of connections"
        ) from None


def _check_sizes(min_size: int, max_size: int) -> None:
    if min_size < 0:
        raise ConfigurationError(
            f"pool minimum size {min_size!r} is not allowed; use 0 or more"
        )
    if max_size < max(1, min_size):
        raise ConfigurationError(
            f"pool maximum size {max_size!r} is not allowed; use at least 1 "
            f"and at least the minimum size ({min_size!r})"
        )
