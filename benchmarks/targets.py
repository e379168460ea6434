"""The stores under test, each able to hand out a fresh, empty database.

Every measurement runs on a database of its own, so no figure is skewed by
rows an earlier one left behind: a new file in a temporary directory for
SQLite, a new schema ``conveyor_bench_<hex>`` for PostgreSQL. Both are
removed when the measurement ends, whether it succeeded or not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

#: The PostgreSQL server used unless CONVEYOR_BENCH_DATABASE_URL names another.
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

#: Seconds to wait for the PostgreSQL server before calling it unreachable.
PG_CONNECT_TIMEOUT = 3

#: How long dropping a schema may wait for a lock; a connection a crashed
#: worker leaked then fails the drop instead of hanging the run.
DROP_LOCK_TIMEOUT = "10s"


@dataclass(frozen=True, slots=True)
class Database:
    """One fresh database: Conveyor's URL, and what raw SQL needs to reach it."""

    url: str  # as Conveyor takes it
    dialect: str  # "sqlite" or "postgresql"
    path: str | None = None  # the SQLite file
    synchronous: str | None = None  # SQLite's synchronous mode
    conninfo: str | None = None  # the PostgreSQL URL without ``schema``
    schema: str | None = None  # the PostgreSQL schema holding the tables


class SQLiteTarget:
    """SQLite in WAL mode, at one ``synchronous`` setting."""

    dialect = "sqlite"

    def __init__(self, directory: Path, synchronous: str) -> None:
        self.synchronous = synchronous
        self.key = "sqlite" if synchronous == "full" else f"sqlite-{synchronous}"
        self.label = f"SQLite (WAL, synchronous={synchronous.upper()})"
        self._directory = directory
        self._made = 0

    @contextmanager
    def fresh(self) -> Iterator[Database]:
        """Yield a new database file; delete it (and its WAL) afterwards."""
        self._made += 1
        path = self._directory / f"{self.key}-{self._made}.db"
        # FULL is Conveyor's default, so its URL names no mode at all.
        query = "" if self.synchronous == "full" else f"?synchronous={self.synchronous}"
        try:
            yield Database(
                f"sqlite:///{path}{query}",
                self.dialect,
                path=str(path),
                synchronous=self.synchronous,
            )
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresTarget:
    """PostgreSQL, one schema per measurement."""

    dialect = "postgresql"
    key = "postgresql"

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.label = "PostgreSQL"

    @contextmanager
    def fresh(self) -> Iterator[Database]:
        """Yield a new schema; drop it, with everything in it, afterwards."""
        schema = f"conveyor_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield Database(
                f"{self.conninfo}{_joiner(self.conninfo)}schema={schema}",
                self.dialect,
                conninfo=self.conninfo,
                schema=schema,
            )
        finally:
            _drop_schema(self.conninfo, schema)


def _joiner(url: str) -> str:
    return "&" if "?" in url else "?"


def _drop_schema(conninfo: str, schema: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{DROP_LOCK_TIMEOUT}'")
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def pg_url() -> str:
    """The PostgreSQL server to measure, as a libpq URL."""
    return os.environ.get("CONVEYOR_BENCH_DATABASE_URL") or DEFAULT_PG_URL


def pg_unreachable(conninfo: str) -> str | None:
    """Why the server at ``conninfo`` cannot be used, or ``None`` if it can."""
    try:
        with psycopg.connect(conninfo, connect_timeout=PG_CONNECT_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]
    return None


def pg_version(conninfo: str) -> str:
    """The server's version string, for the report."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@contextmanager
def scratch_directory() -> Iterator[Path]:
    """A temporary directory for the SQLite files, removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


#: Either kind of store under test.
Target = SQLiteTarget | PostgresTarget
