"""Arguments and results are JSON or nothing: a refusal names the value and
its type, and a refused enqueue writes nothing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, DrainReport, JobFailed, JobState, SerializationError
from conveyor.task import Task
from tests.api import migrated_app
from tests.conftest import Clock

ALLOWED = (
    "pass str, int, float, bool, None, or lists and dicts (with str keys) of those"
)


class Point:
    """A value that is not JSON, with a repr that does not change between runs."""

    def __repr__(self) -> str:
        return "Point(1, 2)"


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


@pytest.fixture
def echo(app: Conveyor) -> Task[..., Any]:
    @app.task(name="api.echo")
    def echo(*args: Any, **kwargs: Any) -> list[Any]:
        return [list(args), kwargs]

    return echo


def contains_itself() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        pytest.param(
            (1, Point()),
            {},
            f"argument 1 of task 'api.echo' is a Point (Point(1, 2)), which is "
            f"not JSON; {ALLOWED}",
            id="positional",
        ),
        pytest.param(
            (),
            {"tags": {1, 2}},
            f"argument 'tags' of task 'api.echo' is a set ({{1, 2}}), which is "
            f"not JSON; {ALLOWED}",
            id="keyword",
        ),
        pytest.param(
            ({"points": [0, Point()]},),
            {},
            f"argument 0['points'][1] of task 'api.echo' is a Point (Point(1, 2)), "
            f"which is not JSON; {ALLOWED}",
            id="nested",
        ),
        pytest.param(
            ({"ok": {1: "one"}},),
            {},
            f"argument 0['ok'] key 1 of task 'api.echo' is a int (1), which is "
            f"not JSON; {ALLOWED}",
            id="int-key",
        ),
        pytest.param(
            (),
            {"ratio": math.nan},
            "argument 'ratio' of task 'api.echo' is a float (nan), which is not "
            "JSON; pass a finite number",
            id="nan",
        ),
        pytest.param(
            ([1.0, math.inf],),
            {},
            "argument 0[1] of task 'api.echo' is a float (inf), which is not "
            "JSON; pass a finite number",
            id="infinity",
        ),
        pytest.param(
            (b"raw",),
            {},
            f"argument 0 of task 'api.echo' is a bytes (b'raw'), which is not "
            f"JSON; {ALLOWED}",
            id="bytes",
        ),
        pytest.param(
            (contains_itself(),),
            {},
            "argument 0 of task 'api.echo' contains itself, which is not JSON",
            id="cycle",
        ),
    ],
)
def test_enqueue_refuses_a_value_that_is_not_json_and_writes_nothing(
    app: Conveyor,
    echo: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(SerializationError) as raised:
        echo.enqueue(*args, **kwargs)

    assert str(raised.value) == message
    assert app.store.count_jobs() == {}


def test_long_reprs_are_cut_to_sixty_characters(
    app: Conveyor, echo: Task[..., Any]
) -> None:
    with pytest.raises(SerializationError) as raised:
        echo.enqueue(frozenset(range(100)))

    shown = repr(frozenset(range(100)))[:60]
    assert str(raised.value) == (
        f"argument 0 of task 'api.echo' is a frozenset ({shown}), which is not "
        f"JSON; {ALLOWED}"
    )


def test_json_arguments_reach_the_task_as_they_were_passed(
    app: Conveyor, echo: Task[..., Any]
) -> None:
    job = echo.enqueue(1, "two", [3.5], {"four": None}, flag=True, empty={})

    app.drain()

    assert job.result(timeout=0) == [
        [1, "two", [3.5], {"four": None}],
        {"flag": True, "empty": {}},
    ]


def test_a_tuple_argument_arrives_as_a_list(
    app: Conveyor, echo: Task[..., Any]
) -> None:
    job = echo.enqueue((1, 2))

    app.drain()

    assert job.result(timeout=0) == [[[1, 2]], {}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            {1, 2},
            f"the result of task 'api.returns' is a set ({{1, 2}}), which is not "
            f"JSON; {ALLOWED}",
            id="set",
        ),
        pytest.param(
            {1: "one"},
            f"the result key 1 of task 'api.returns' is a int (1), which is not "
            f"JSON; {ALLOWED}",
            id="int-key",
        ),
        pytest.param(
            math.nan,
            "the result of task 'api.returns' is a float (nan), which is not "
            "JSON; pass a finite number",
            id="nan",
        ),
    ],
)
def test_a_result_that_is_not_json_fails_the_job_at_once(
    app: Conveyor, value: Any, message: str
) -> None:
    @app.task(name="api.returns")
    def returns() -> Any:
        return value

    job = returns.enqueue()

    assert app.drain() == DrainReport(failed=1)
    record = job.refresh().record
    assert (record.state, record.attempts, record.result_json) == (
        JobState.FAILED,
        1,
        None,
    )
    assert (record.error_type, record.error_message) == (
        "SerializationError",
        message,
    )
    with pytest.raises(JobFailed) as raised:
        job.result(timeout=0)
    assert (raised.value.error_type, raised.value.error_message) == (
        "SerializationError",
        message,
    )
