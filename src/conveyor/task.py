"""Tasks: plain functions registered by name, and how they are enqueued.

``@app.task`` turns a function into a ``Task``. Calling the task runs the
function right here; ``enqueue`` stores a job for a worker to run.
``using`` returns a copy with other options, leaving the original as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ._json import encode_call
from .backoff import Backoff, Exponential
from .errors import ConfigurationError
from .records import NewJob

if TYPE_CHECKING:
    from .app import Conveyor
    from .job import Job

P = ParamSpec("P")
R = TypeVar("R")

#: Priorities are small integers; higher runs first.
PRIORITY_RANGE = range(-1000, 1001)


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """A task with its arguments, ready to be enqueued (see ``enqueue_many``)."""

    task: Task[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def to_new_job(self, now: datetime) -> NewJob:
        """Validate and encode this call as a row to insert."""
        return self.task._new_job(self.args, self.kwargs, now)


@dataclasses.dataclass(frozen=True)
class Task(Generic[P, R]):
    """A function that Conveyor can run in the background.

    >>> @app.task(queue="mail", max_attempts=5)  # doctest: +SKIP
    ... def send(to: str) -> None: ...
    >>> send.enqueue("ada@example.com")  # doctest: +SKIP
    """

    fn: Callable[P, R]
    app: Conveyor
    name: str
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 3
    backoff: Backoff = dataclasses.field(default_factory=Exponential)
    timeout: float | None = None
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    run_after: datetime | timedelta | None = None

    def __post_init__(self) -> None:
        _check_options(self)

    @functools.cached_property
    def is_async(self) -> bool:
        """True when the function is ``async def``."""
        return inspect.iscoroutinefunction(self.fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function now, in this process, as a plain call."""
        return self.fn(*args, **kwargs)

    def using(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        run_after: datetime | timedelta | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> Task[P, R]:
        """Return a copy of this task with other options for its next jobs.

        >>> send.using(queue="urgent", run_after=timedelta(minutes=5))  # doctest: +SKIP
        """
        changes: dict[str, Any] = {
            "queue": queue,
            "priority": priority,
            "run_after": run_after,
            "max_attempts": max_attempts,
            "timeout": timeout,
        }
        return dataclasses.replace(
            self, **{key: value for key, value in changes.items() if value is not None}
        )

    def call(self, *args: P.args, **kwargs: P.kwargs) -> Call:
        """Bundle arguments for ``Conveyor.enqueue_many``, checking nothing yet."""
        return Call(self, args, kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Store a job that runs this task with these arguments; return it.

        Raises ``SerializationError`` naming any argument that is not JSON.
        """
        return self.app.enqueue_many([Call(self, args, kwargs)])[0]

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """``enqueue`` for async code: the write runs off the event loop."""
        call = Call(self, args, kwargs)
        jobs = await asyncio.to_thread(self.app.enqueue_many, [call])
        return jobs[0]

    def _new_job(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], now: datetime
    ) -> NewJob:
        args_json, kwargs_json = encode_call(self.name, args, kwargs)
        return NewJob(
            task=self.name,
            args_json=args_json,
            kwargs_json=kwargs_json,
            queue=self.queue,
            priority=self.priority,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            run_at=_run_at(self.run_after, now),
        )


def _run_at(run_after: datetime | timedelta | None, now: datetime) -> datetime | None:
    if run_after is None:
        return None
    if isinstance(run_after, timedelta):
        return now + run_after
    if run_after.tzinfo is None:
        raise ConfigurationError(
            f"run_after={run_after!r} has no time zone; pass an aware datetime "
            "(for example datetime.now(UTC)) or a timedelta"
        )
    return run_after


def _check_options(task: Task[Any, Any]) -> None:
    def refuse(option: str, value: Any, allowed: str) -> None:
        raise ConfigurationError(
            f"task {task.name!r}: {option}={value!r} is not allowed; {allowed}"
        )

    if not task.name or not isinstance(task.name, str):
        refuse("name", task.name, "use a non-empty string")
    if not isinstance(task.queue, str) or not task.queue:
        refuse("queue", task.queue, "use a non-empty string")
    if not _is_int(task.priority) or task.priority not in PRIORITY_RANGE:
        refuse("priority", task.priority, "use an integer from -1000 to 1000")
    if not _is_int(task.max_attempts) or task.max_attempts < 1:
        refuse("max_attempts", task.max_attempts, "use an integer of 1 or more")
    if task.timeout is not None and not (_is_number(task.timeout) and task.timeout > 0):
        refuse("timeout", task.timeout, "use a number of seconds above 0, or None")
    if not callable(task.backoff):
        refuse("backoff", task.backoff, "use Exponential(), Fixed(s) or a callable")
    if not isinstance(task.retry_on, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in task.retry_on
    ):
        refuse("retry_on", task.retry_on, "use a tuple of exception classes")
    if task.run_after is not None and not isinstance(
        task.run_after, datetime | timedelta
    ):
        refuse("run_after", task.run_after, "use a datetime or a timedelta")


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but True is no priority or attempt count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
