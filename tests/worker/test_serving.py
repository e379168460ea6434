"""An idle worker process starts new jobs at once, and survives jobs it cannot run.

A job enqueued by another process wakes an idle worker (a commit seen on
SQLite, a notification on PostgreSQL). A stored job naming a task the
worker does not know fails for good with ``UnknownTaskError``; the worker
itself carries on.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor import Conveyor, JobFailed, JobState
from conveyor.records import AttemptOutcome, NewJob
from conveyor.store import Store
from tests.worker.conftest import PATIENCE, WorkerProcess, wait_until_registered
from tests.worker.tasks_for_tests import echo

SpawnWorker = Callable[..., WorkerProcess]

#: What ``job.result`` waits for a job an idle worker should start at once.
#: A bound on a failure, not a measure of speed.
PROMPT = 5.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_job_of_an_unknown_task_fails_and_the_worker_serves_on(
    app: Conveyor, store: Store, spawn_worker: SpawnWorker, pool: str
) -> None:
    worker = spawn_worker("--concurrency", "2", "--pool", pool)
    [job_id] = store.enqueue([NewJob(task="no.such.task")], app.clock())

    with pytest.raises(JobFailed) as failed:
        app.job(job_id).result(timeout=PATIENCE)

    assert failed.value.error_type == "UnknownTaskError"
    assert str(failed.value.error_message).startswith(
        "no task is named 'no.such.task'; known tasks: "
    )
    record = app.job(job_id).record
    assert (record.state, record.attempts) == (JobState.FAILED, 1)
    attempts = store.list_attempts(job_id)
    assert [(a.attempt, a.outcome, a.error_type) for a in attempts] == [
        (1, AttemptOutcome.FAILED, "UnknownTaskError")
    ]

    later = echo.enqueue(3)

    assert later.result(timeout=PATIENCE) == 3
    assert worker.popen.poll() is None


@pytest.mark.timeout(60)
def test_idle_worker_process_starts_a_new_job_promptly(
    app: Conveyor, store: Store, spawn_worker: SpawnWorker
) -> None:
    worker = spawn_worker("--concurrency", "2")
    wait_until_registered(store, worker)

    job = echo.enqueue(42)

    assert job.result(timeout=PROMPT) == 42
