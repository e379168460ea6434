"""Workers that die or freeze in the middle of a job.

A process-pool worker killed outright must not leave its children running:
a child that ran on would keep running a job that another worker rescues
and runs again, the same job twice at once.

A worker frozen (SIGSTOP) past its lease loses its job to a rescue; when it
wakes (SIGCONT) its late result is refused, and it serves on.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable

import psutil
import psycopg
import pytest

from conveyor import Conveyor, JobState
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from conveyor.store.sqlite import SQLiteStore
from tests import _pg
from tests.worker.conftest import (
    PATIENCE,
    Ledger,
    WorkerProcess,
    pid_is_gone,
    session_is_over,
    wait_for,
    worker_pid,
)
from tests.worker.tasks_for_tests import echo, sleep_on_first_attempt

SpawnWorker = Callable[..., WorkerProcess]

#: How long the frozen worker's first attempt sleeps: longer than its lease
#: lapses and another worker rescues and reruns the job.
FROZEN_JOB_SECONDS = 3.0


def open_transactions(process: WorkerProcess, store: Store) -> int:
    """How many transactions ``process`` holds open on the store's database."""
    if isinstance(store, SQLiteStore):
        probe = sqlite3.connect(store.path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return 1
        finally:
            probe.close()
        return 0

    tcp = psutil.Process(process.pid).net_connections(kind="tcp")
    ports = [connection.laddr.port for connection in tcp]
    with psycopg.connect(_pg.base_url()) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE client_port = ANY(%s) AND xact_start IS NOT NULL",
            [ports],
        ).fetchone()
    return int(row[0]) if row else 0


def freeze_between_transactions(process: WorkerProcess, store: Store) -> None:
    """SIGSTOP ``process`` at a moment it holds no transaction open.

    A process frozen inside a transaction would hold its locks and stall
    every other worker, which is not what the test is about.
    """

    def frozen_outside_transactions() -> bool:
        process.send(signal.SIGSTOP)
        wait_for(
            lambda: psutil.Process(process.pid).status() == psutil.STATUS_STOPPED,
            PATIENCE,
            f"worker {process.pid} to stop",
        )
        if open_transactions(process, store) == 0:
            return True
        process.send(signal.SIGCONT)
        return False

    wait_for(frozen_outside_transactions, PATIENCE, "a moment between transactions")


@pytest.mark.timeout(60)
def test_children_of_a_killed_process_pool_worker_end_with_it(
    app: Conveyor, store: Store, ledger: Ledger, spawn_worker: SpawnWorker
) -> None:
    worker = spawn_worker("--concurrency", "2", "--pool", "process", "--lease", "2")
    jobs = app.enqueue_many(sleep_on_first_attempt.call() for _ in range(2))
    wait_for(lambda: len(ledger.starts()) == 2, PATIENCE, "both jobs to start")
    children = {pids[0] for pids in ledger.starts().values()}

    worker.send(signal.SIGKILL)

    assert worker.wait_exit(PATIENCE) == -signal.SIGKILL
    assert worker.pid not in children
    wait_for(
        lambda: all(pid_is_gone(pid) for pid in children),
        PATIENCE,
        f"the children {sorted(children)} to end after their worker",
    )
    wait_for(
        lambda: session_is_over(worker.pid),
        PATIENCE,
        "every process the worker started to end",
    )
    assert store.count_jobs() == {JobState.RUNNING: 2}
    assert [job.refresh().state for job in jobs] == [JobState.RUNNING] * 2
    assert ledger.ends() == {}


@pytest.mark.timeout(90)
def test_result_of_a_worker_frozen_past_its_lease_is_refused_and_it_serves_on(
    app: Conveyor, store: Store, ledger: Ledger, spawn_worker: SpawnWorker
) -> None:
    frozen = spawn_worker("--concurrency", "1", "--lease", "2")
    job = sleep_on_first_attempt.enqueue(FROZEN_JOB_SECONDS)
    wait_for(lambda: job.id in ledger.starts(), PATIENCE, "the job to start")
    freeze_between_transactions(frozen, store)
    rescuer = spawn_worker("--concurrency", "1", "--lease", "2")
    try:
        assert job.result(timeout=PATIENCE) == 2
    finally:
        frozen.send(signal.SIGCONT)

    wait_for(
        lambda: len(ledger.ends().get(job.id, [])) == 2,
        PATIENCE,
        "the frozen attempt to end",
    )
    wait_for(
        lambda: "refused" in frozen.log() or "Lost the lease" in frozen.log(),
        PATIENCE,
        "the frozen worker to drop its late result",
    )
    assert ledger.starts()[job.id] == [frozen.pid, rescuer.pid]
    assert ledger.ends()[job.id] == [rescuer.pid, frozen.pid]
    attempts = store.list_attempts(job.id)
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, AttemptOutcome.LOST),
        (2, AttemptOutcome.SUCCEEDED),
    ]
    assert [worker_pid(a.worker_id) for a in attempts] == [frozen.pid, rescuer.pid]
    record = job.refresh().record
    assert (record.state, record.attempts, record.result_json) == (
        JobState.SUCCEEDED,
        2,
        "2",
    )

    rescuer.send(signal.SIGTERM)
    assert rescuer.wait_exit(PATIENCE) == 0
    later = echo.enqueue(9)

    assert later.result(timeout=PATIENCE) == 9
    assert ledger.starts()[later.id] == [frozen.pid]
    frozen.send(signal.SIGTERM)
    assert frozen.wait_exit(PATIENCE) == 0
