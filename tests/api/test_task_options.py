"""Task options: each refused value is named with the range that is allowed,
and a refused task is not registered."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import ConfigurationError, Conveyor, Exponential, Fixed

PRIORITY = "use an integer from -1000 to 1000"
ATTEMPTS = "use an integer of 1 or more"
TIMEOUT = "use a number of seconds above 0, or None"
RETRY_ON = "use a tuple of exception classes"


def module_level_task() -> None:
    """A function whose default task name is its module and name."""


def case(options: dict[str, Any], message: str) -> Any:
    """One refused option, named in the test id as option=value."""
    (name, value), *_ = options.items()
    return pytest.param(options, message, id=f"{name}={value!r}")


@pytest.fixture
def app() -> Conveyor:
    # Registering tasks opens no database; none is needed here.
    return Conveyor("sqlite:///never-opened.db")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        case({"priority": 1001}, f"priority=1001 is not allowed; {PRIORITY}"),
        case({"priority": -1001}, f"priority=-1001 is not allowed; {PRIORITY}"),
        case({"priority": 1.5}, f"priority=1.5 is not allowed; {PRIORITY}"),
        case({"priority": True}, f"priority=True is not allowed; {PRIORITY}"),
        case({"max_attempts": 0}, f"max_attempts=0 is not allowed; {ATTEMPTS}"),
        case({"max_attempts": "3"}, f"max_attempts='3' is not allowed; {ATTEMPTS}"),
        case({"timeout": 0}, f"timeout=0 is not allowed; {TIMEOUT}"),
        case({"timeout": -1.5}, f"timeout=-1.5 is not allowed; {TIMEOUT}"),
        case({"timeout": "30"}, f"timeout='30' is not allowed; {TIMEOUT}"),
        case({"queue": ""}, "queue='' is not allowed; use a non-empty string"),
        case({"queue": 7}, "queue=7 is not allowed; use a non-empty string"),
        case(
            {"retry_on": (ValueError, "KeyError")},
            f"retry_on=(<class 'ValueError'>, 'KeyError') is not allowed; {RETRY_ON}",
        ),
        case(
            {"retry_on": ValueError},
            f"retry_on=<class 'ValueError'> is not allowed; {RETRY_ON}",
        ),
        case(
            {"backoff": 5},
            "backoff=5 is not allowed; use Exponential(), Fixed(s) or a callable",
        ),
    ],
)
def test_bad_option_is_refused_by_name_with_the_allowed_range(
    app: Conveyor, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        app.task(name="api.t", **options)(module_level_task)

    assert str(raised.value) == f"task 'api.t': {message}"
    assert app.tasks == {}


def test_an_empty_name_is_refused_rather_than_replaced(app: Conveyor) -> None:
    with pytest.raises(ConfigurationError) as raised:
        app.task(name="")(module_level_task)

    assert str(raised.value) == (
        "task '': name='' is not allowed; use a non-empty string"
    )
    assert app.tasks == {}


def test_options_at_the_edges_of_their_ranges_are_accepted(app: Conveyor) -> None:
    low = app.task(name="api.low", priority=-1000, max_attempts=1, timeout=0.001)(
        module_level_task
    )
    high = app.task(
        name="api.high",
        priority=1000,
        retry_on=[ConnectionError, TimeoutError],
        backoff=Fixed(0),
    )(module_level_task)

    assert (low.priority, low.max_attempts, low.timeout) == (-1000, 1, 0.001)
    assert (high.priority, high.retry_on) == (1000, (ConnectionError, TimeoutError))


def test_task_defaults(app: Conveyor) -> None:
    task = app.task(module_level_task)

    assert task.name == f"{__name__}.module_level_task"
    assert (task.queue, task.priority, task.max_attempts, task.timeout) == (
        "default",
        0,
        3,
        None,
    )
    assert (task.backoff, task.retry_on, task.run_after) == (
        Exponential(),
        (Exception,),
        None,
    )
    assert app.tasks == {task.name: task}


def test_using_refuses_a_bad_option_by_name(app: Conveyor) -> None:
    task = app.task(name="api.t")(module_level_task)

    with pytest.raises(ConfigurationError) as raised:
        task.using(priority=5000)

    assert (
        str(raised.value) == f"task 'api.t': priority=5000 is not allowed; {PRIORITY}"
    )


def test_a_name_taken_by_another_function_is_refused(app: Conveyor) -> None:
    def first() -> None: ...

    def second() -> None: ...

    registered = app.task(name="api.dup")(first)

    with pytest.raises(ConfigurationError) as raised:
        app.task(name="api.dup")(second)

    assert str(raised.value) == (
        f"task name 'api.dup' is already taken by {first!r}; pass name= to "
        "register this function under another name"
    )
    assert app.tasks == {"api.dup": registered}


def test_registering_the_same_function_again_replaces_its_options(
    app: Conveyor,
) -> None:
    app.task(name="api.again")(module_level_task)

    again = app.task(name="api.again", priority=9)(module_level_task)

    assert app.tasks == {"api.again": again}
    assert again.priority == 9


def test_calling_a_task_runs_the_function_here(app: Conveyor) -> None:
    @app.task(name="api.add")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.is_async is False
