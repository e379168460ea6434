"""Task names: an unknown name is refused at enqueue with the names that are
known, and a stored job whose task no longer exists fails without a retry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, DrainReport, JobFailed, JobState, UnknownTaskError
from tests.api import migrated_app
from tests.conftest import Clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


def register_add_and_echo(app: Conveyor) -> None:
    @app.task(name="api.echo")
    def echo(value: int) -> int:
        return value

    @app.task(name="api.add")
    def add(a: int, b: int) -> int:
        return a + b


def test_enqueue_by_unknown_name_lists_the_known_tasks(app: Conveyor) -> None:
    register_add_and_echo(app)

    with pytest.raises(UnknownTaskError) as raised:
        app.enqueue("nope", 1)

    assert (
        str(raised.value) == "no task is named 'nope'; known tasks: api.add, api.echo"
    )
    assert app.store.count_jobs() == {}


def test_enqueue_by_unknown_name_says_none_when_no_task_is_registered(
    app: Conveyor,
) -> None:
    with pytest.raises(UnknownTaskError) as raised:
        app.enqueue("nope")

    assert str(raised.value) == "no task is named 'nope'; known tasks: none"


def test_enqueue_by_known_name_runs_that_task(app: Conveyor) -> None:
    register_add_and_echo(app)

    job = app.enqueue("api.add", 2, b=3)
    app.drain()

    assert job.result(timeout=0) == 5


def test_stored_job_of_an_unknown_task_fails_on_drain_without_retry(
    app: Conveyor,
) -> None:
    producer = Conveyor(app.database_url)

    @producer.task(name="api.retired", max_attempts=5)
    def retired() -> None: ...

    job = retired.enqueue()
    producer.close()
    register_add_and_echo(app)

    assert app.drain() == DrainReport(failed=1)
    record = app.job(job.id).record
    assert (record.state, record.attempts, record.max_attempts) == (
        JobState.FAILED,
        1,
        5,
    )
    assert (record.error_type, record.error_message) == (
        "UnknownTaskError",
        "no task is named 'api.retired'; known tasks: api.add, api.echo",
    )
    with pytest.raises(JobFailed) as raised:
        app.job(job.id).result(timeout=0)
    assert raised.value.error_type == "UnknownTaskError"


def test_enqueue_many_refuses_a_task_this_app_did_not_register(
    app: Conveyor,
) -> None:
    other = Conveyor(app.database_url)

    @other.task(name="api.elsewhere")
    def elsewhere() -> None: ...

    with pytest.raises(UnknownTaskError) as raised:
        app.enqueue_many([elsewhere.call()])

    assert str(raised.value) == ("no task is named 'api.elsewhere'; known tasks: none")
    assert app.store.count_jobs() == {}


def test_enqueue_many_refuses_another_apps_task_of_the_same_name(
    app: Conveyor,
) -> None:
    other = Conveyor(app.database_url)

    @app.task(name="api.same")
    def mine() -> str:
        return "mine"

    @other.task(name="api.same")
    def theirs() -> str:
        return "theirs"

    with pytest.raises(UnknownTaskError) as raised:
        app.enqueue_many([mine.call(), theirs.call()])

    assert str(raised.value) == (
        f"task 'api.same' is registered here with {mine.fn!r}, not "
        f"{theirs.fn!r}; enqueue it on the app that registered it"
    )
    assert app.store.count_jobs() == {}
