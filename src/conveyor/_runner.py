"""Running one claimed job: call the function, then turn what happened into an
``Outcome`` for the store.

The call (``run_call``) may happen in a worker thread or in a child process;
deciding what the outcome means (``decide``) happens in the worker, which
owns the clock, the random source and the back-off policy.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import context
from ._json import decode, encode_result
from .backoff import MAX_DELAY
from .errors import (
    ConfigurationError,
    ConveyorError,
    SerializationError,
    UnknownTaskError,
)
from .records import ClaimedJob, ErrorInfo, Outcome, OutcomeKind

if TYPE_CHECKING:
    from .app import Conveyor


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one call of a task function did. Crosses the process boundary."""

    result_json: str | None = None
    error: ErrorInfo | None = None
    retryable: bool = False
    snooze: float | None = None


def error_info(error: BaseException, *, timed_out: bool = False) -> ErrorInfo:
    """Describe an exception as it is stored."""
    text = "".join(traceback.format_exception(error))
    return ErrorInfo(type(error).__name__, str(error), text, timed_out)


def run_call(app: Conveyor, job: ClaimedJob) -> CallResult:
    """Run the job's function with its arguments; never raises."""
    try:
        task = app.get_task(job.task)
    except UnknownTaskError as error:
        return CallResult(error=error_info(error))

    token = context.enter(
        context.JobContext(job.id, job.task, job.queue, job.attempt, job.max_attempts)
    )
    try:
        args, kwargs = decode(job.args_json), decode(job.kwargs_json)
        if task.is_async:
            value = asyncio.run(task.fn(*args, **kwargs))
        else:
            value = task.fn(*args, **kwargs)
        return CallResult(result_json=encode_result(job.task, value))
    except context.Snooze as snooze:
        return CallResult(snooze=snooze.seconds)
    except SerializationError as error:
        return CallResult(error=error_info(error))
    except Exception as error:
        return CallResult(
            error=error_info(error), retryable=isinstance(error, task.retry_on)
        )
    except BaseException as error:
        # SystemExit from sys.exit() in a task, say: the job fails, the slot
        # that ran it lives on.
        return CallResult(error=error_info(error))
    finally:
        context.leave(token)


def timed_out(job: ClaimedJob) -> CallResult:
    """The call result of an attempt that ran past its timeout."""
    error = ConveyorError(
        f"job {job.id} ran longer than its timeout of {job.timeout} s"
    )
    info = ErrorInfo("JobTimeout", str(error), None, timed_out=True)
    return CallResult(error=info, retryable=True)


def decide(
    app: Conveyor, job: ClaimedJob, call: CallResult, now: datetime, rng: random.Random
) -> Outcome:
    """Turn a call result into the outcome to report: done, retry or fail."""
    if call.snooze is not None:
        run_at = now + timedelta(seconds=call.snooze)
        return Outcome(job.id, job.attempt, OutcomeKind.SNOOZED, run_at=run_at)

    if call.error is None:
        return Outcome(
            job.id, job.attempt, OutcomeKind.SUCCEEDED, result_json=call.result_json
        )

    if not call.retryable or job.attempt >= job.max_attempts:
        return Outcome(job.id, job.attempt, OutcomeKind.FAILED, error=call.error)

    delay = _retry_delay(app, job, rng)
    if isinstance(delay, ErrorInfo):
        return Outcome(job.id, job.attempt, OutcomeKind.FAILED, error=delay)
    run_at = now + timedelta(seconds=delay)
    return Outcome(
        job.id, job.attempt, OutcomeKind.RETRY, error=call.error, run_at=run_at
    )


def _retry_delay(
    app: Conveyor, job: ClaimedJob, rng: random.Random
) -> float | ErrorInfo:
    """The task's back-off for this attempt, or why it could not be used."""
    try:
        delay = float(app.get_task(job.task).backoff(job.attempt, rng))
    except Exception as error:
        return error_info(error)

    if not delay <= MAX_DELAY:  # NaN fails this too
        problem = ConfigurationError(
            f"the back-off of task {job.task!r} returned {delay!r} for attempt "
            f"{job.attempt}; it must return seconds up to {MAX_DELAY:.0f}"
        )
        return error_info(problem)
    return max(0.0, delay)  # a negative wait means "at once"
