"""Fixtures for the worker tests: real databases, real processes, a ledger.

``database_url`` names a fresh database on each engine (a new SQLite file,
or a new PostgreSQL schema marked ``postgres`` and skipped in one line when
no server answers, unless ``CONVEYOR_REQUIRE_POSTGRES=1``). ``app`` is the
test tasks' application pointed at it and migrated.

Workers come two ways. ``start_worker`` runs a ``Worker`` in this process,
for tests that wait on its signals. ``spawn_worker`` runs the real
``conveyor worker`` command as a child process in a session of its own, so
tests can send it real signals; teardown kills every process of that
session that is still alive, so no test leaves an orphan behind.

The ledger is the tasks' own record of what ran where (see
``tasks_for_tests``). Tests wait for conditions with ``wait_for``, which
polls until a deadline; no test sleeps and hopes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from conveyor import Conveyor
from conveyor.store import Store
from conveyor.worker import Worker, WorkerSettings
from tests.worker import tasks_for_tests

T = TypeVar("T")

#: The repository root: worker processes run here so ``tests`` imports.
REPO = Path(__file__).resolve().parents[2]

#: The ``conveyor`` command of the interpreter running the tests.
CONVEYOR = Path(sys.executable).parent / "conveyor"

#: The ``--app`` the worker processes load.
TASKS_MODULE = "tests.worker.tasks_for_tests"

#: Seconds between two looks at a condition a test waits for.
POLL_INTERVAL = 0.05

#: How long a test waits for something that should happen in well under a
#: second. Generous: it bounds a failure, it does not measure speed.
PATIENCE = 15.0

#: How long teardown waits for a killed worker process to be reaped.
REAP_WAIT = 10.0


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something true; return that.

    Fails the test, naming ``what``, when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(POLL_INTERVAL)


def pid_is_gone(pid: int) -> bool:
    """True when no process runs as ``pid``: none has it, or it is a zombie."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def worker_pid(worker_id: str) -> int:
    """The pid inside a worker id, ``host:pid:suffix``."""
    return int(worker_id.rsplit(":", 2)[1])


def session_is_over(session: int) -> bool:
    """True when no process of the session led by ``session`` still runs."""
    for pid in psutil.pids():
        try:
            member = os.getsid(pid) == session
        except ProcessLookupError:
            continue
        if member and not pid_is_gone(pid):
            return False
    return True


# -- the ledger -----------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    """The lines the tasks appended: what started and ended, in which process."""

    path: Path

    def lines(self) -> list[tuple[str, int, int]]:
        """Every complete line as ``(word, job_id, pid)``, in the order written."""
        if not self.path.exists():
            return []

        text = self.path.read_text()
        complete = text[: text.rfind("\n") + 1]
        found = []
        for line in complete.splitlines():
            word, job_id, pid = line.split()
            found.append((word, int(job_id), int(pid)))
        return found

    def pids(self, word: str) -> dict[int, list[int]]:
        """For each job, the pids of the processes that wrote ``word``, in order."""
        found: dict[int, list[int]] = defaultdict(list)
        for written, job_id, pid in self.lines():
            if written == word:
                found[job_id].append(pid)
        return dict(found)

    def starts(self) -> dict[int, list[int]]:
        """For each job that started, the pids that started it, in order."""
        return self.pids("start")

    def ends(self) -> dict[int, list[int]]:
        """For each job that ended, the pids that ended it, in order."""
        return self.pids("end")

    def count(self, word: str, pid: int | None = None) -> int:
        """How many ``word`` lines were written (by ``pid``, if given)."""
        return sum(
            1
            for written, _, by in self.lines()
            if written == word and (pid is None or by == pid)
        )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """An empty ledger file of this test."""
    return Ledger(tmp_path / "ledger.txt")


# -- the database and the app ---------------------------------------------


@pytest.fixture
def database_url(store_url: str) -> str:
    """A fresh database on each engine (see ``store_url`` in tests/conftest.py).

    SQLite: ``sqlite:///<tmp_path>/conveyor.db``. PostgreSQL: a new schema,
    dropped afterwards; marked ``postgres`` and skipped with one line when
    the server is unreachable, unless ``CONVEYOR_REQUIRE_POSTGRES=1``.
    """
    return store_url


@pytest.fixture
def app(
    database_url: str, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Conveyor]:
    """The test tasks' app on this test's migrated database, writing its ledger."""
    monkeypatch.setenv("CONVEYOR_TEST_LEDGER", str(ledger.path))
    app = tasks_for_tests.app
    app.use_database(database_url)
    app.migrate()

    yield app

    app.close()


@pytest.fixture
def store(app: Conveyor) -> Store:
    """The app's store, for reading what the workers did."""
    return app.store


# -- workers in this process ----------------------------------------------


@pytest.fixture
def start_worker(app: Conveyor) -> Iterator[Callable[..., Worker]]:
    """Starts ``Worker``s in this process; stops those still running afterwards.

    ``start_worker(concurrency=2, lease=5.0)`` takes ``WorkerSettings``
    fields; claims are polled every 0.1 s instead of every second.
    """
    started: list[Worker] = []

    def start(**fields: Any) -> Worker:
        settings = WorkerSettings(**({"poll_interval": 0.1} | fields))
        worker = Worker(app, settings, app_spec=TASKS_MODULE)
        worker.start()
        started.append(worker)
        return worker

    yield start

    for worker in started:
        if not worker.stopped.is_set():
            worker.stop(grace=0)


# -- workers in processes of their own ------------------------------------


@dataclass
class WorkerProcess:
    """A ``conveyor worker`` process, leading a session of its own."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, number: signal.Signals) -> None:
        """Send a signal to the worker process alone (not to its children)."""
        self.popen.send_signal(number)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; return its exit code.

        Fails the test, showing the worker's log, after ``timeout`` seconds.
        """
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.pid} still running after {timeout} s; log:\n{self.log()}"
            )

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def kill_session(self) -> None:
        """SIGKILL the worker and every process of its session, then reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(REAP_WAIT)


@pytest.fixture
def spawn_worker(
    database_url: str, ledger: Ledger, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts ``conveyor worker`` processes; kills what is left of them afterwards.

    ``spawn_worker("--concurrency", "4", "--lease", "2")`` adds the options
    to ``conveyor worker --app tests.worker.tasks_for_tests``. The process
    reads this test's database and ledger from its environment, and its
    output goes to a log file printed at teardown (shown when a test fails).
    """
    spawned: list[WorkerProcess] = []
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_TEST_LEDGER": str(ledger.path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CONVEYOR_APP", None)

    def spawn(*options: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(spawned)}.log"
        command = [str(CONVEYOR), "worker", "--app", TASKS_MODULE, *options]
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = WorkerProcess(popen, log_path)
        spawned.append(process)
        return process

    yield spawn

    for process in spawned:
        process.kill_session()
        print(f"--- worker {process.pid} exit {process.popen.returncode} ---")
        print(process.log())


def wait_until_registered(store: Store, process: WorkerProcess) -> None:
    """Wait until ``process`` has registered as a running worker."""

    def registered() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(
                f"worker {process.pid} exited with {process.popen.returncode}:\n"
                f"{process.log()}"
            )
        return any(
            w.pid == process.pid and w.state == "running" for w in store.list_workers()
        )

    wait_for(registered, PATIENCE, f"worker {process.pid} to register")
