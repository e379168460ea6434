"""Work a worker left behind is finished by another: lapsed leases and retries.

These run ``Worker``s in this process. A worker that died is simulated by
claiming through the store directly, at a ``now`` far enough in the past
that its lease has lapsed; a restart is one worker stopped and another
started on the same database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from conveyor import Conveyor, JobState
from conveyor.records import AttemptOutcome, Outcome, OutcomeKind
from conveyor.store import Store
from conveyor.worker import Worker
from tests.worker.conftest import PATIENCE
from tests.worker.tasks_for_tests import echo, fail_first_attempt

StartWorker = Callable[..., Worker]

#: The worker id of the dead worker whose lease lapses.
DEAD_WORKER = "dead-host:1:000000"


@pytest.mark.timeout(60)
def test_lapsed_lease_is_rescued_and_run_by_another_worker_and_late_result_refused(
    app: Conveyor, store: Store, start_worker: StartWorker
) -> None:
    past = app.clock() - timedelta(minutes=5)
    [job_id] = store.enqueue([echo.call(7).to_new_job(past)], past)
    [claimed] = store.claim(DEAD_WORKER, None, 1, 1.0, past)
    assert (claimed.id, claimed.attempt) == (job_id, 1)

    worker = start_worker(concurrency=2, rescue_interval=0.1)

    assert app.job(job_id).result(timeout=PATIENCE) == 7
    attempts = store.list_attempts(job_id)
    assert [(a.attempt, a.worker_id, a.outcome) for a in attempts] == [
        (1, DEAD_WORKER, AttemptOutcome.LOST),
        (2, worker.id, AttemptOutcome.SUCCEEDED),
    ]
    rescues = [e for e in store.list_events(job_id) if e.reason == "lease lapsed"]
    assert [(e.from_state, e.to_state, e.actor) for e in rescues] == [
        (JobState.RUNNING, JobState.QUEUED, worker.id)
    ]

    late = Outcome(job_id, 1, OutcomeKind.SUCCEEDED, result_json="99")

    assert store.finish(DEAD_WORKER, [late], app.clock()) == []
    record = app.job(job_id).record
    assert (record.state, record.attempts, record.result_json) == (
        JobState.SUCCEEDED,
        2,
        "7",
    )
    assert len(store.list_attempts(job_id)) == 2


@pytest.mark.timeout(60)
def test_retry_back_off_survives_a_worker_restart(
    app: Conveyor, store: Store, start_worker: StartWorker
) -> None:
    first = start_worker(concurrency=1)
    job = fail_first_attempt.enqueue()
    assert first.wait_finished(1, PATIENCE)

    first.stop(grace=PATIENCE)

    retry = job.refresh().record
    assert (retry.state, retry.attempts, retry.error_type) == (
        JobState.QUEUED,
        1,
        "ConnectionError",
    )
    assert retry.run_at > app.clock()
    assert store.count_jobs() == {JobState.QUEUED: 1}

    second = start_worker(concurrency=1)

    assert job.result(timeout=PATIENCE) == 2
    attempts = store.list_attempts(job.id)
    assert [(a.attempt, a.worker_id, a.outcome, a.error_type) for a in attempts] == [
        (1, first.id, AttemptOutcome.FAILED, "ConnectionError"),
        (2, second.id, AttemptOutcome.SUCCEEDED, None),
    ]
    assert attempts[1].started_at >= retry.run_at
