"""Shutting a worker process down with real signals while its jobs run.

One SIGTERM (or SIGINT) is a graceful stop: no more claims, running jobs get
``--grace`` seconds, and those still running are put back in the queue with
an ``interrupted`` attempt that does not count. A second signal exits at
once, leaving the jobs ``running`` under a lease that another worker rescues
when it lapses.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from conveyor import Conveyor, JobState
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from tests.worker.conftest import (
    PATIENCE,
    Ledger,
    WorkerProcess,
    pid_is_gone,
    session_is_over,
    wait_for,
    worker_pid,
)
from tests.worker.tasks_for_tests import sleep_on_first_attempt

SpawnWorker = Callable[..., WorkerProcess]

POOLS = ["thread", "process"]

#: How long a worker given a 1 s grace may take to exit after SIGTERM. A
#: bound on a failure, not a measure of speed.
SHUTDOWN_BOUND = 15.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool", POOLS)
def test_sigterm_puts_running_jobs_back_as_interrupted_and_exits_zero(
    app: Conveyor,
    store: Store,
    ledger: Ledger,
    spawn_worker: SpawnWorker,
    pool: str,
) -> None:
    worker = spawn_worker("--concurrency", "2", "--pool", pool, "--grace", "1")
    jobs = app.enqueue_many(sleep_on_first_attempt.call() for _ in range(2))
    wait_for(lambda: len(ledger.starts()) == 2, PATIENCE, "both jobs to start")

    worker.send(signal.SIGTERM)

    assert worker.wait_exit(SHUTDOWN_BOUND) == 0
    assert store.count_jobs() == {JobState.QUEUED: 2}
    for job in jobs:
        record = job.refresh().record
        assert (record.state, record.attempts, record.worker_id) == (
            JobState.QUEUED,
            0,
            None,
        )
        assert [(a.attempt, a.outcome) for a in store.list_attempts(job.id)] == [
            (1, AttemptOutcome.INTERRUPTED)
        ]
    assert ledger.ends() == {}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("pool", POOLS)
def test_second_sigint_exits_at_once_and_a_new_worker_rescues_the_jobs(
    app: Conveyor,
    store: Store,
    ledger: Ledger,
    spawn_worker: SpawnWorker,
    pool: str,
) -> None:
    first = spawn_worker(
        "--concurrency", "2", "--pool", pool, "--grace", "60", "--lease", "2"
    )
    jobs = app.enqueue_many(sleep_on_first_attempt.call() for _ in range(2))
    wait_for(lambda: len(ledger.starts()) == 2, PATIENCE, "both jobs to start")
    first_pids = {pids[0] for pids in ledger.starts().values()}

    first.send(signal.SIGINT)
    wait_for(lambda: "Stopping:" in first.log(), PATIENCE, "the first SIGINT")
    first.send(signal.SIGINT)

    assert first.wait_exit(PATIENCE) == 1
    assert store.count_jobs() == {JobState.RUNNING: 2}
    wait_for(
        lambda: all(pid_is_gone(pid) for pid in first_pids),
        PATIENCE,
        f"the processes that ran the jobs ({sorted(first_pids)}) to be gone",
    )
    wait_for(
        lambda: session_is_over(first.pid),
        PATIENCE,
        "every process the first worker started to end",
    )

    second = spawn_worker("--concurrency", "2", "--pool", pool, "--lease", "2")

    assert [job.result(timeout=PATIENCE) for job in jobs] == [2, 2]
    for job in jobs:
        attempts = store.list_attempts(job.id)
        assert [(a.attempt, a.outcome) for a in attempts] == [
            (1, AttemptOutcome.LOST),
            (2, AttemptOutcome.SUCCEEDED),
        ]
        assert [worker_pid(a.worker_id) for a in attempts] == [first.pid, second.pid]
    assert {job.id: len(ledger.starts()[job.id]) for job in jobs} == {
        job.id: 2 for job in jobs
    }
    assert ledger.count("end") == 2
