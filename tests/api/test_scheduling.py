"""Which job runs first: priority, then run time; ``run_after`` holds a job
back until the clock passes it; ``using`` changes options on a copy only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conveyor import ConfigurationError, Conveyor, DrainReport, JobState
from conveyor.task import Task
from tests.api import migrated_app
from tests.conftest import CLOCK_START, Clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


@pytest.fixture
def ran() -> list[str]:
    """The labels of the jobs that ran, in the order they ran."""
    return []


@pytest.fixture
def record(app: Conveyor, ran: list[str]) -> Task[[str], None]:
    @app.task(name="api.record")
    def record(label: str) -> None:
        ran.append(label)

    return record


def test_drain_runs_higher_priority_first_then_oldest(
    app: Conveyor, record: Task[[str], None], ran: list[str]
) -> None:
    record.using(priority=-5).enqueue("low")
    record.enqueue("normal")
    record.using(priority=10).enqueue("high")
    record.using(priority=10).enqueue("high, enqueued later")
    record.enqueue("normal, enqueued later")

    assert app.drain() == DrainReport(succeeded=5)
    assert ran == [
        "high",
        "high, enqueued later",
        "normal",
        "normal, enqueued later",
        "low",
    ]


def test_task_priority_option_orders_jobs_like_using(
    app: Conveyor, ran: list[str]
) -> None:
    @app.task(name="api.urgent", priority=100)
    def urgent() -> None:
        ran.append("urgent")

    @app.task(name="api.routine")
    def routine() -> None:
        ran.append("routine")

    routine.enqueue()
    urgent.enqueue()
    app.drain()

    assert ran == ["urgent", "routine"]


def test_job_with_run_after_waits_until_the_clock_passes_it(
    app: Conveyor, clock: Clock, record: Task[[str], None], ran: list[str]
) -> None:
    job = record.using(run_after=timedelta(seconds=30)).enqueue("later")

    assert job.record.run_at == clock.after(30)
    assert app.drain() == DrainReport()
    clock.advance(29.999)
    assert app.drain() == DrainReport()
    assert (ran, job.refresh().state) == ([], JobState.QUEUED)
    clock.advance(0.001)
    assert app.drain() == DrainReport(succeeded=1)
    assert ran == ["later"]


def test_due_jobs_run_before_a_scheduled_one_of_higher_priority(
    app: Conveyor, clock: Clock, record: Task[[str], None], ran: list[str]
) -> None:
    record.using(priority=50, run_after=timedelta(minutes=1)).enqueue("scheduled")
    record.enqueue("due")

    app.drain()
    clock.advance(60)
    app.drain()

    assert ran == ["due", "scheduled"]


def test_run_after_an_aware_datetime_is_stored_in_utc(
    app: Conveyor, record: Task[[str], None]
) -> None:
    moment = datetime(2030, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=2)))

    job = record.using(run_after=moment).enqueue("at one")

    assert job.record.run_at == datetime(2030, 1, 1, 1, 0, tzinfo=UTC)
    assert job.record.run_at.utcoffset() == timedelta(0)


def test_run_after_in_the_past_runs_at_once(
    app: Conveyor, record: Task[[str], None], ran: list[str]
) -> None:
    job = record.using(run_after=CLOCK_START - timedelta(days=1)).enqueue("late")

    assert job.record.run_at == CLOCK_START - timedelta(days=1)
    assert app.drain() == DrainReport(succeeded=1)


def test_naive_run_after_is_refused_and_nothing_is_written(
    app: Conveyor, record: Task[[str], None]
) -> None:
    naive = datetime(2030, 1, 1)

    with pytest.raises(ConfigurationError) as raised:
        record.using(run_after=naive).enqueue("never")

    assert str(raised.value) == (
        "run_after=datetime.datetime(2030, 1, 1, 0, 0) has no time zone; pass an "
        "aware datetime (for example datetime.now(UTC)) or a timedelta"
    )
    assert app.store.count_jobs() == {}


def test_run_after_of_another_type_is_refused_by_name(
    app: Conveyor, record: Task[[str], None]
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        record.using(run_after=30)  # type: ignore[arg-type]

    assert str(raised.value) == (
        "task 'api.record': run_after=30 is not allowed; use a datetime or a timedelta"
    )


def test_using_returns_a_copy_and_leaves_the_original_unchanged(
    app: Conveyor, record: Task[[str], None]
) -> None:
    urgent = record.using(queue="urgent", priority=7, max_attempts=9, timeout=5.0)

    assert urgent is not record
    assert app.tasks["api.record"] is record
    assert (urgent.name, urgent.fn, urgent.queue, urgent.priority) == (
        "api.record",
        record.fn,
        "urgent",
        7,
    )
    assert (urgent.max_attempts, urgent.timeout) == (9, 5.0)
    assert (record.queue, record.priority, record.max_attempts) == ("default", 0, 3)
    assert (record.timeout, record.run_after) == (None, None)


def test_jobs_carry_the_options_of_the_task_they_were_enqueued_with(
    app: Conveyor, record: Task[[str], None]
) -> None:
    plain = record.enqueue("plain").record
    urgent = (
        record.using(queue="urgent", priority=7, max_attempts=9, timeout=5.0)
        .enqueue("urgent")
        .record
    )

    def options(row: Any) -> tuple[Any, ...]:
        return (row.task, row.queue, row.priority, row.max_attempts, row.timeout)

    assert options(plain) == ("api.record", "default", 0, 3, None)
    assert options(urgent) == ("api.record", "urgent", 7, 9, 5.0)


def test_drain_of_named_queues_leaves_other_queues_alone(
    app: Conveyor, record: Task[[str], None], ran: list[str]
) -> None:
    record.using(queue="mail").enqueue("mail")
    other = record.enqueue("default")

    assert app.drain(["mail"]) == DrainReport(succeeded=1)
    assert ran == ["mail"]
    assert other.refresh().state is JobState.QUEUED
