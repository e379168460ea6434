"""``enqueue_many``: many jobs in one transaction, all of them or none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from conveyor import (
    ConfigurationError,
    Conveyor,
    DrainReport,
    JobState,
    SerializationError,
    UnknownTaskError,
)
from conveyor.task import Task
from tests.api import migrated_app
from tests.conftest import Clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


@pytest.fixture
def add(app: Conveyor) -> Task[[int, int], int]:
    @app.task(name="api.add")
    def add(a: int, b: int) -> int:
        return a + b

    return add


def test_enqueue_many_writes_every_job_and_returns_them_in_order(
    app: Conveyor, clock: Clock, add: Task[[int, int], int]
) -> None:
    jobs = app.enqueue_many(
        [add.call(1, 1), add.using(queue="bulk").call(2, b=2), add.call(3, 3)]
    )

    records = [job.refresh().record for job in jobs]
    assert [(r.args_json, r.kwargs_json, r.queue) for r in records] == [
        ("[1,1]", "{}", "default"),
        ("[2]", '{"b":2}', "bulk"),
        ("[3,3]", "{}", "default"),
    ]
    first = jobs[0].id
    assert [job.id for job in jobs] == [first, first + 1, first + 2]
    assert {r.created_at for r in records} == {clock.now}
    assert app.store.count_jobs() == {JobState.QUEUED: 3}
    assert app.drain() == DrainReport(succeeded=3)
    assert [job.result(timeout=0) for job in jobs] == [2, 4, 6]


def test_enqueue_many_takes_any_iterable(
    app: Conveyor, add: Task[[int, int], int]
) -> None:
    jobs = app.enqueue_many(add.call(i, i) for i in range(100))

    assert len(jobs) == 100
    assert app.store.count_jobs() == {JobState.QUEUED: 100}


def test_enqueue_many_of_nothing_writes_nothing(app: Conveyor) -> None:
    assert app.enqueue_many([]) == []
    assert app.store.count_jobs() == {}


def test_one_argument_that_is_not_json_writes_none_of_the_jobs(
    app: Conveyor, add: Task[[int, int], int]
) -> None:
    bad = add.call(5, b"6")  # type: ignore[arg-type]
    calls = [add.call(1, 2), add.call(3, 4), bad]

    with pytest.raises(SerializationError) as raised:
        app.enqueue_many(calls)

    assert str(raised.value) == (
        "argument 1 of task 'api.add' is a bytes (b'6'), which is not JSON; pass "
        "str, int, float, bool, None, or lists and dicts (with str keys) of those"
    )
    assert app.store.count_jobs() == {}


def test_one_call_of_an_unregistered_task_writes_none_of_the_jobs(
    app: Conveyor, add: Task[[int, int], int]
) -> None:
    other = Conveyor(app.database_url)

    @other.task(name="api.stranger")
    def stranger(greeting: str) -> None: ...

    with pytest.raises(UnknownTaskError):
        app.enqueue_many([add.call(1, 2), stranger.call("hello")])

    assert app.store.count_jobs() == {}


def test_a_naive_run_after_in_one_call_writes_none_of_the_jobs(
    app: Conveyor, add: Task[[int, int], int]
) -> None:
    late = add.using(run_after=datetime(2030, 1, 2))

    with pytest.raises(ConfigurationError):
        app.enqueue_many([add.call(1, 2), late.call(3, 4)])

    assert app.store.count_jobs() == {}


def test_sqlite_refuses_the_callers_connection(
    app: Conveyor, add: Task[[int, int], int]
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        app.enqueue_many([add.call(1, 2)], connection=object())

    assert str(raised.value) == (
        "the SQLite store cannot enqueue on an application's connection; "
        "pass connection=None"
    )
    assert app.store.count_jobs() == {}
