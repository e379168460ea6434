"""The pruner: a worker deletes final jobs once they are older than
``prune_after``, with their attempts and events, and leaves the rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from conveyor import Conveyor, JobState
from conveyor.records import NewJob
from conveyor.store import Store
from conveyor.worker import Worker, _pruner
from tests.worker.conftest import PATIENCE, wait_for
from tests.worker.tasks_for_tests import echo

StartWorker = Callable[..., Worker]


@pytest.mark.timeout(60)
def test_worker_prunes_final_jobs_past_their_age_and_keeps_the_rest(
    app: Conveyor, store: Store, start_worker: StartWorker
) -> None:
    done = echo.enqueue(1)
    later = app.clock() + timedelta(hours=1)
    [waiting] = store.enqueue([NewJob(task=echo.name, run_at=later)], app.clock())
    worker = start_worker(prune_after=0.5, prune_interval=0.2)
    assert worker.wait_finished(1, PATIENCE)

    wait_for(lambda: store.get_job(done.id) is None, PATIENCE, "the pruner")

    assert store.list_attempts(done.id) == []
    assert store.list_events(done.id) == []
    record = store.get_job(waiting)
    assert record is not None and record.state is JobState.QUEUED


@pytest.mark.timeout(60)
def test_worker_without_prune_after_keeps_every_job(
    app: Conveyor, store: Store, start_worker: StartWorker
) -> None:
    done = echo.enqueue(1)
    worker = start_worker(prune_after=None)
    assert worker.wait_finished(1, PATIENCE)

    assert _pruner.sweep(worker) == 0

    record = store.get_job(done.id)
    assert record is not None and record.state is JobState.SUCCEEDED
