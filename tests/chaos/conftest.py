"""Fixtures for the fault tests: a schema per test, worker processes, a ledger.

``chaos_db`` is a fresh PostgreSQL schema, migrated and dropped afterwards.
Workers reach it through a URL that also sets ``application_name`` to a
name only this test uses, so a test can find its workers' sessions in
``pg_stat_activity`` and terminate them without touching anyone else's.
The test itself reads the store under the default name, which is spared.

``fleet`` runs real ``conveyor worker`` processes, each leading a session
of its own so tests can signal it alone; teardown SIGKILLs every process
still alive (also one left stopped by SIGSTOP) and reaps it, so no test
leaves an orphan behind.

Tests wait with ``wait_for``, which polls until a deadline; none sleeps
and hopes. A test marked ``restarts_server`` is moved to the end of the
session, after every other test has had the server to itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

from conveyor import Conveyor
from conveyor.store import Store
from tests import _pg
from tests.chaos import chaos_tasks

T = TypeVar("T")

#: The repository root: worker processes run here so ``tests`` imports.
REPO = Path(__file__).resolve().parents[2]

#: The ``conveyor`` command of the interpreter running the tests.
CONVEYOR = Path(sys.executable).parent / "conveyor"

#: The ``--app`` the worker processes load.
TASKS_MODULE = "tests.chaos.chaos_tasks"

#: Seconds between two looks at a condition a test waits for.
POLL_INTERVAL = 0.05

#: How long a test waits for something that takes a second or two. Generous:
#: it bounds a failure on a loaded machine, it does not measure speed.
PATIENCE = 30.0

#: What a worker logs when it lets go of an attempt's result.
_DROPPED = re.compile(
    r"(?:Lost the lease on job|Result of job) (?P<job>\d+) attempt (?P<attempt>\d+)"
)

#: How long teardown waits for a killed worker process to be reaped.
REAP_WAIT = 10.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "restarts_server: restarts the PostgreSQL server; runs last in the session",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test of the session is in ``items``, not only this directory's,
    # so a server restart cannot cut another test's connections.
    restarting = [item for item in items if item.get_closest_marker("restarts_server")]
    if restarting:
        items[:] = [item for item in items if item not in restarting] + restarting


def poll(
    condition: Callable[[], T], timeout: float, interval: float = POLL_INTERVAL
) -> T | None:
    """Poll ``condition`` for up to ``timeout`` seconds; return its first true
    value, or ``None`` when the time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something true; return that.

    Fails the test, naming ``what``, when ``timeout`` seconds pass first.
    """
    value = poll(condition, timeout)
    if value is None:
        raise AssertionError(f"gave up after {timeout} s waiting for {what}")
    return value


# -- the ledger -----------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """One ``start`` line of the ledger: an attempt that began in a process."""

    attempt: int
    pid: int


@dataclass(frozen=True)
class Ledger:
    """The lines the task appended: which attempt ran in which process."""

    path: Path

    def lines(self) -> list[tuple[str, int, int, int]]:
        """Every complete line as ``(word, job_id, attempt, pid)``, in order."""
        if not self.path.exists():
            return []

        text = self.path.read_text()
        complete = text[: text.rfind("\n") + 1]
        found = []
        for line in complete.splitlines():
            word, job_id, attempt, pid = line.split()
            found.append((word, int(job_id), int(attempt), int(pid)))
        return found

    def runs(self, word: str) -> dict[int, list[Start]]:
        """For each job, the attempts that wrote ``word``, in the order written."""
        found: dict[int, list[Start]] = defaultdict(list)
        for written, job_id, attempt, pid in self.lines():
            if written == word:
                found[job_id].append(Start(attempt, pid))
        return dict(found)

    def has(self, word: str, job_id: int, pid: int) -> bool:
        """True once ``pid`` wrote ``word`` for ``job_id``."""
        return any(
            (written, job, by) == (word, job_id, pid)
            for written, job, _, by in self.lines()
        )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """An empty ledger file of this test."""
    return Ledger(tmp_path / "ledger.txt")


# -- the database -----------------------------------------------------------


@dataclass(frozen=True)
class ChaosDatabase:
    """A test's schema on the server, and the URLs that reach it."""

    server: str  # the server, without a schema: for the test's own SQL
    schema: str
    url: str  # what the test's store opens (application_name "conveyor")
    application_name: str  # what the workers' sessions are called
    worker_url: str

    def query(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run one statement with the schema on the search path; return its rows."""
        with psycopg.connect(self.server, autocommit=True) as connection:
            connection.execute(
                sql.SQL("SET search_path = {}").format(sql.Identifier(self.schema))
            )
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def terminate_workers(self) -> int:
        """Terminate every server session of this test's workers; return how many."""
        rows = _run_on(
            self.server,
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
            "FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND (application_name = %(name)s "
            "     OR application_name = %(name)s || ' listen')",
            name=self.application_name,
        )
        return int(rows[0][0])

    def listening_workers(self) -> int:
        """How many of this test's workers hold a LISTEN session right now."""
        rows = _run_on(
            self.server,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() "
            "AND application_name = %(name)s || ' listen'",
            name=self.application_name,
        )
        return int(rows[0][0])


def _run_on(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(statement, params).fetchall()


@pytest.fixture
def chaos_db(postgres_server: str) -> Iterator[ChaosDatabase]:
    """A fresh, migrated schema of this test; dropped afterwards."""
    schema = _pg.new_schema_name()
    application_name = f"conveyor_chaos_{uuid.uuid4().hex[:12]}"
    url = _pg.store_url(postgres_server, schema)
    database = ChaosDatabase(
        server=postgres_server,
        schema=schema,
        url=url,
        application_name=application_name,
        worker_url=f"{url}&application_name={application_name}",
    )

    yield database

    _pg.drop_schema(postgres_server, schema)


@pytest.fixture
def app(chaos_db: ChaosDatabase) -> Iterator[Conveyor]:
    """The chaos tasks' app on this test's migrated schema."""
    app = chaos_tasks.app
    app.use_database(chaos_db.url)
    app.migrate()

    yield app

    app.close()


@pytest.fixture
def store(app: Conveyor) -> Store:
    """The app's store, for enqueueing and for reading what the workers did."""
    return app.store


# -- worker processes -------------------------------------------------------


@dataclass
class WorkerProcess:
    """A ``conveyor worker`` process, leading a session of its own."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, number: signal.Signals) -> None:
        """Send a signal to the worker process."""
        self.popen.send_signal(number)

    def kill(self) -> None:
        """SIGKILL the worker and reap it."""
        self.popen.kill()
        self.popen.wait(REAP_WAIT)

    def stop(self, timeout: float) -> int:
        """SIGTERM the worker, wait for it to exit; return its exit code."""
        self.send(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.pid} still running {timeout} s after SIGTERM; "
                f"log:\n{self.log()}"
            )

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def dropped_results(self) -> set[tuple[int, int]]:
        """``(job_id, attempt)`` of every result the worker logged it let go of."""
        return {
            (int(found["job"]), int(found["attempt"]))
            for found in _DROPPED.finditer(self.log())
        }

    def kill_session(self) -> None:
        """SIGKILL every process of the worker's session, then reap the worker."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(REAP_WAIT)


@dataclass
class Fleet:
    """Starts worker processes on a test's schema and remembers every one."""

    env: dict[str, str]
    log_dir: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def spawn(self, *options: str) -> WorkerProcess:
        """Start ``conveyor worker`` with the fault tests' options, plus ``options``.

        The defaults are four threads and a 3 s lease; later options win.
        """
        log_path = self.log_dir / f"worker-{len(self.started)}.log"
        command = [
            str(CONVEYOR),
            "worker",
            "--app",
            TASKS_MODULE,
            "--concurrency",
            "4",
            "--pool",
            "thread",
            "--lease",
            "3",
            "--log-level",
            "WARNING",
            *options,
        ]
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                command,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = WorkerProcess(popen, log_path)
        self.started.append(process)
        return process

    def alive(self) -> list[WorkerProcess]:
        """The processes that have not exited."""
        return [process for process in self.started if process.alive()]


@pytest.fixture
def fleet(chaos_db: ChaosDatabase, ledger: Ledger, tmp_path: Path) -> Iterator[Fleet]:
    """Worker processes on this test's schema; any left are killed afterwards.

    Each process reads the database (under the test's ``application_name``)
    and the ledger from its environment; its output goes to a log file
    printed at teardown, so a failing test shows it.
    """
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": chaos_db.worker_url,
        "CONVEYOR_TEST_LEDGER": str(ledger.path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CONVEYOR_APP", None)
    fleet = Fleet(env, tmp_path)

    yield fleet

    for process in fleet.started:
        process.kill_session()
    for process in fleet.started:
        log = process.log()
        print(f"--- worker {process.pid} exit {process.popen.returncode} ---")
        print(log[-4000:])


def accepted_but_said_dropped(
    database: ChaosDatabase, processes: list[WorkerProcess]
) -> set[tuple[int, int, int]]:
    """``(pid, job_id, attempt)`` of every result a worker logged it let go of
    although the store accepted it from that very worker; empty when none."""
    accepted = {
        (job_id, attempt): worker_id
        for job_id, attempt, worker_id in database.query(
            "SELECT job_id, attempt, worker_id FROM job_attempts "
            "WHERE outcome = 'succeeded'"
        )
    }

    return {
        (process.pid, job_id, attempt)
        for process in processes
        for job_id, attempt in process.dropped_results()
        if f":{process.pid}:" in accepted.get((job_id, attempt), "")
    }


def wait_until_registered(store: Store, process: WorkerProcess) -> None:
    """Wait until ``process`` has registered as a running worker."""

    def registered() -> bool:
        if not process.alive():
            raise AssertionError(
                f"worker {process.pid} exited with {process.popen.returncode}:\n"
                f"{process.log()}"
            )
        return any(
            w.pid == process.pid and w.state == "running" for w in store.list_workers()
        )

    wait_for(registered, PATIENCE, f"worker {process.pid} to register")
