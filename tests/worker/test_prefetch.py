"""Prefetch: a worker claims jobs ahead of its free slots, and gives them back.

With ``prefetch`` a worker holds more jobs than it runs. Jobs waiting for a
slot keep their lease, do not start their timeout, and are put back to
``queued`` at once when the worker stops, without waiting out the grace
period and without counting an attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from conveyor import Conveyor, JobState
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from conveyor.worker import Worker
from tests.worker.conftest import PATIENCE, wait_for
from tests.worker.tasks_for_tests import sleep_on_first_attempt, touch

StartWorker = Callable[..., Worker]


@pytest.mark.timeout(60)
def test_prefetch_claims_more_jobs_than_slots_and_runs_them_all(
    app: Conveyor, store: Store, start_worker: StartWorker
) -> None:
    jobs = app.enqueue_many(touch.call() for _ in range(40))
    worker = start_worker(concurrency=2, prefetch=8)

    assert worker.wait_finished(40, PATIENCE * 4)

    assert {job.refresh().state for job in jobs} == {JobState.SUCCEEDED}
    # One claim stamps all its jobs with the same time: the first claim
    # took every job the worker could hold, not just one per slot.
    claims = Counter(
        event.at
        for job in jobs
        for event in store.list_events(job.id)
        if event.reason == "claimed"
    )
    assert claims.most_common(1)[0][1] == 10
    assert sum(claims.values()) == 40


@pytest.mark.timeout(60)
def test_stopping_puts_back_prefetched_jobs_at_once_without_counting_them(
    app: Conveyor, store: Store, start_worker: StartWorker
) -> None:
    blocker = sleep_on_first_attempt.enqueue(0.5)
    waiting = app.enqueue_many(touch.call() for _ in range(5))
    worker = start_worker(concurrency=1, prefetch=5)
    wait_for(
        lambda: all(job.refresh().state is JobState.RUNNING for job in waiting),
        PATIENCE,
        "the prefetched jobs to be claimed",
    )

    worker.stop(grace=5)

    assert blocker.refresh().state is JobState.SUCCEEDED
    for job in waiting:
        record = job.refresh().record
        assert (record.state, record.attempts) == (JobState.QUEUED, 0)
        [attempt] = store.list_attempts(job.id)
        assert attempt.outcome is AttemptOutcome.INTERRUPTED
