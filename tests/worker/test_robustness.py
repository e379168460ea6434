"""What a task or a policy does wrong never costs the worker a slot.

A task that raises ``SystemExit``, or whose back-off policy answers
nonsense, fails its job with an error that says so; the slot serves the
next job. While every slot is stuck in a call that ran past its timeout,
the worker claims nothing more, so jobs claimed ahead cannot pile up
behind calls that never end.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor import Conveyor, JobFailed
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from conveyor.worker import Worker
from tests.worker.conftest import PATIENCE, wait_for
from tests.worker.tasks_for_tests import (
    echo,
    exit_the_thread,
    fail_with_a_broken_back_off,
    outlive_timeout,
)

StartWorker = Callable[..., Worker]


@pytest.mark.timeout(60)
def test_task_raising_system_exit_fails_its_job_and_the_slot_serves_on(
    app: Conveyor, start_worker: StartWorker
) -> None:
    start_worker(concurrency=1)
    job = exit_the_thread.enqueue(3)

    with pytest.raises(JobFailed) as failed:
        job.result(timeout=PATIENCE)

    assert (failed.value.error_type, failed.value.error_message) == ("SystemExit", "3")
    assert job.refresh().attempts == 1
    assert echo.enqueue(5).result(timeout=PATIENCE) == 5


@pytest.mark.timeout(60)
def test_back_off_answering_nan_fails_the_job_with_a_clear_error(
    app: Conveyor, start_worker: StartWorker
) -> None:
    start_worker(concurrency=1)
    job = fail_with_a_broken_back_off.enqueue()

    with pytest.raises(JobFailed) as failed:
        job.result(timeout=PATIENCE)

    assert failed.value.error_type == "ConfigurationError"
    assert failed.value.error_message == (
        f"the back-off of task {fail_with_a_broken_back_off.name!r} returned nan "
        "for attempt 1; it must return seconds up to 31536000"
    )
    assert echo.enqueue(6).result(timeout=PATIENCE) == 6


@pytest.mark.timeout(60)
def test_worker_claims_nothing_while_every_slot_is_hung(
    app: Conveyor, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker(concurrency=1, prefetch=4)
    hung = outlive_timeout.enqueue(3.0)
    wait_for(
        lambda: (
            [a.outcome for a in store.list_attempts(hung.id)]
            == [AttemptOutcome.TIMED_OUT]
        ),
        PATIENCE,
        "the first attempt to time out",
    )

    assert worker.inflight.free_slots() == 0

    later = echo.enqueue(7)
    assert later.result(timeout=PATIENCE * 2) == 7
