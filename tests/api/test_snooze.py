"""``raise Snooze(seconds)``: the job runs again later, and the attempt is
not counted against ``max_attempts``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import (
    Conveyor,
    ConveyorError,
    DrainReport,
    JobState,
    Snooze,
    current_job,
)
from conveyor.records import AttemptOutcome
from tests.api import migrated_app
from tests.conftest import Clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


def test_snooze_requeues_at_now_plus_seconds_without_counting_the_attempt(
    app: Conveyor, clock: Clock
) -> None:
    @app.task(name="api.wait_once")
    def wait_once() -> str:
        if len(app.store.list_attempts(current_job().id)) == 1:
            raise Snooze(10)
        return "done"

    job = wait_once.enqueue()

    assert app.drain() == DrainReport(snoozed=1)
    record = job.refresh().record
    assert (record.state, record.attempts, record.run_at) == (
        JobState.QUEUED,
        0,
        clock.after(10),
    )
    assert (record.error_type, record.finished_at) == (None, None)


def test_task_with_one_attempt_still_succeeds_after_five_snoozes(
    app: Conveyor, clock: Clock
) -> None:
    attempts_seen: list[int] = []

    @app.task(name="api.patient", max_attempts=1)
    def patient() -> str:
        attempts_seen.append(current_job().attempt)
        if len(attempts_seen) <= 5:
            raise Snooze(10)
        return "done"

    job = patient.enqueue()

    for _ in range(5):
        assert app.drain() == DrainReport(snoozed=1)
        assert (job.refresh().state, job.attempts) == (JobState.QUEUED, 0)
        clock.advance(10)
    assert app.drain() == DrainReport(succeeded=1)

    assert job.result(timeout=0) == "done"
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 1)
    assert attempts_seen == [1, 1, 1, 1, 1, 1]
    assert [a.outcome for a in app.store.list_attempts(job.id)] == [
        *[AttemptOutcome.SNOOZED] * 5,
        AttemptOutcome.SUCCEEDED,
    ]


def test_snoozed_job_is_not_run_before_its_time(app: Conveyor, clock: Clock) -> None:
    @app.task(name="api.sleepy")
    def sleepy() -> None:
        raise Snooze(10)

    job = sleepy.enqueue()
    app.drain()
    clock.advance(9.999)

    assert app.drain() == DrainReport()
    assert job.refresh().record.run_at == clock.after(0.001)


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf"), 1e12])
def test_snooze_outside_zero_to_a_year_is_refused(seconds: float) -> None:
    with pytest.raises(ConveyorError) as raised:
        Snooze(seconds)

    assert str(raised.value) == (
        f"Snooze seconds={seconds!r} is not allowed; use a number of seconds "
        "from 0 to 31536000"
    )


def test_snooze_keeps_its_seconds_as_a_float() -> None:
    assert Snooze(3).seconds == 3.0
    assert str(Snooze(3)) == "snoozed for 3 s"
