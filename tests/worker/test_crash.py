"""A process-pool worker killed outright must not leave its children running.

A child that ran on after its worker died would keep running a job that
another worker rescues and runs again: the same job twice at once. So the
child processes must end soon after their worker, however it ended.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from conveyor import Conveyor, JobState
from conveyor.store import Store
from tests.worker.conftest import (
    PATIENCE,
    Ledger,
    WorkerProcess,
    pid_is_gone,
    wait_for,
)
from tests.worker.tasks_for_tests import sleep_on_first_attempt

SpawnWorker = Callable[..., WorkerProcess]


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
    assert store.count_jobs() == {JobState.RUNNING: 2}
    assert [job.refresh().state for job in jobs] == [JobState.RUNNING] * 2
    assert ledger.ends() == {}
