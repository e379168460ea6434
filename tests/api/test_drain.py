"""``drain``: runs due jobs here until none is left (or ``max_jobs``), and
reports exactly what it did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, DrainReport, Fixed, JobState, Snooze
from conveyor.task import Task
from tests.api import migrated_app
from tests.conftest import Clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


@pytest.fixture
def outcome(app: Conveyor) -> Task[[str], str]:
    @app.task(name="api.outcome", backoff=Fixed(60), retry_on=(ConnectionError,))
    def outcome(kind: str) -> str:
        if kind == "fail":
            raise ValueError("fails for good")
        if kind == "retry":
            raise ConnectionError("retried later")
        if kind == "snooze":
            raise Snooze(60)
        return kind

    return outcome


def test_drain_report_counts_each_outcome_exactly(
    app: Conveyor, outcome: Task[[str], str]
) -> None:
    for kind in ["ok", "fail", "ok", "retry", "snooze", "ok"]:
        outcome.enqueue(kind)

    report = app.drain()

    assert report == DrainReport(succeeded=3, failed=1, retried=1, snoozed=1)
    assert report.total == 6
    assert app.store.count_jobs() == {
        JobState.SUCCEEDED: 3,
        JobState.FAILED: 1,
        JobState.QUEUED: 2,
    }


def test_drain_stops_after_max_jobs(app: Conveyor, outcome: Task[[str], str]) -> None:
    jobs = [outcome.enqueue("ok") for _ in range(5)]

    assert app.drain(max_jobs=2) == DrainReport(succeeded=2)
    assert [job.refresh().state for job in jobs] == [
        JobState.SUCCEEDED,
        JobState.SUCCEEDED,
        JobState.QUEUED,
        JobState.QUEUED,
        JobState.QUEUED,
    ]
    assert app.drain() == DrainReport(succeeded=3)


def test_drain_with_max_jobs_zero_runs_nothing(
    app: Conveyor, outcome: Task[[str], str]
) -> None:
    outcome.enqueue("ok")

    assert app.drain(max_jobs=0) == DrainReport()
    assert app.store.count_jobs() == {JobState.QUEUED: 1}


def test_max_jobs_counts_every_attempt_including_retries(app: Conveyor) -> None:
    @app.task(name="api.always_down", max_attempts=5, backoff=Fixed(0))
    def always_down() -> None:
        raise ConnectionError("down")

    job = always_down.enqueue()

    assert app.drain(max_jobs=2) == DrainReport(retried=2)
    assert (job.refresh().state, job.attempts) == (JobState.QUEUED, 2)


def test_drain_of_an_empty_store_reports_nothing(app: Conveyor) -> None:
    report = app.drain()

    assert report == DrainReport(succeeded=0, failed=0, retried=0, snoozed=0)
    assert report.total == 0
