"""Jobs that run past their task's timeout, in each kind of pool.

The process pool kills the child running such a job and starts another, so
the slot serves on at once. The thread pool cannot kill a thread: it records
the attempt as timed out and lets the thread run on in its slot, while the
worker's other slots keep serving.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from conveyor import Conveyor, JobFailed, JobState
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from conveyor.worker import Worker
from tests.worker.conftest import PATIENCE, Ledger, WorkerProcess
from tests.worker.tasks_for_tests import echo, hang_on_first_attempt, outlive_timeout

TIMED_OUT = AttemptOutcome.TIMED_OUT


@pytest.mark.timeout(60)
def test_process_pool_kills_a_job_past_its_timeout_and_the_slot_serves_on(
    app: Conveyor,
    store: Store,
    ledger: Ledger,
    spawn_worker: Callable[..., WorkerProcess],
) -> None:
    # One slot: the job after the timeout can only run in the replacement.
    worker = spawn_worker("--concurrency", "1", "--pool", "process")
    job = hang_on_first_attempt.enqueue()

    assert job.result(timeout=PATIENCE) == 2
    attempts = store.list_attempts(job.id)
    assert [(a.attempt, a.outcome, a.error_type) for a in attempts] == [
        (1, TIMED_OUT, "JobTimeout"),
        (2, AttemptOutcome.SUCCEEDED, None),
    ]
    killed, replacement = ledger.starts()[job.id]
    assert worker.pid not in {killed, replacement}
    assert killed != replacement
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)

    later = echo.enqueue(7)

    assert later.result(timeout=PATIENCE) == 7
    assert ledger.starts()[later.id] == [replacement]
    assert worker.popen.poll() is None


@pytest.mark.timeout(60)
def test_thread_pool_times_out_every_attempt_then_fails_and_serves_on(
    app: Conveyor, store: Store, start_worker: Callable[..., Worker]
) -> None:
    # Each attempt keeps its slot busy after its timeout; the third slot
    # is left for the job that follows.
    worker = start_worker(concurrency=3)
    job = outlive_timeout.enqueue()

    with pytest.raises(JobFailed) as failed:
        job.result(timeout=PATIENCE)

    assert (failed.value.error_type, failed.value.error_message) == (
        "JobTimeout",
        f"job {job.id} ran longer than its timeout of 0.3 s",
    )
    assert (job.state, job.attempts) == (JobState.FAILED, 2)
    attempts = store.list_attempts(job.id)
    assert [(a.attempt, a.outcome, a.error_type) for a in attempts] == [
        (1, TIMED_OUT, "JobTimeout"),
        (2, TIMED_OUT, "JobTimeout"),
    ]

    later = echo.enqueue(5)

    assert later.result(timeout=PATIENCE) == 5
    assert worker.wait_finished(3, PATIENCE)
    assert not worker.stopping.is_set()
