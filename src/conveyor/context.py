"""What a running task can learn about its own job, and how it asks to wait.

Inside a task, ``current_job()`` returns the job's id, task, queue and
attempt; ``raise Snooze(seconds)`` puts the job back to run later without
counting the attempt as a failure.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from .backoff import MAX_DELAY
from .errors import ConveyorError

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("conveyor_job")


@dataclass(frozen=True, slots=True)
class JobContext:
    """The job a task is running for."""

    id: int
    task: str
    queue: str
    attempt: int
    max_attempts: int

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure now would fail the job for good."""
        return self.attempt >= self.max_attempts


class Snooze(Exception):
    """Raised by a task to run again after ``seconds``, without counting a failure.

    >>> raise Snooze(30)  # doctest: +SKIP
    """

    def __init__(self, seconds: float) -> None:
        if not 0 <= seconds <= MAX_DELAY:  # NaN fails this too
            raise ConveyorError(
                f"Snooze seconds={seconds!r} is not allowed; use a number of "
                f"seconds from 0 to {MAX_DELAY:.0f}"
            )
        self.seconds = float(seconds)
        super().__init__(f"snoozed for {seconds} s")


def current_job() -> JobContext:
    """Return the job the calling task runs for.

    >>> @app.task  # doctest: +SKIP
    ... def report():
    ...     print(current_job().attempt)
    """
    try:
        return _current.get()
    except LookupError:
        raise ConveyorError(
            "current_job() was called outside a running job; call it from "
            "inside a task function"
        )


def enter(job: JobContext) -> contextvars.Token[JobContext]:
    """Make ``job`` the current job of this thread (used by the runner)."""
    return _current.set(job)


def leave(token: contextvars.Token[JobContext]) -> None:
    """Undo ``enter``."""
    _current.reset(token)
