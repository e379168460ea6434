"""The job state machine: every state, what it means, and which moves are allowed.

A job is always in exactly one of these states. The stores enforce the same
rules in SQL (each state-changing statement names the states it may leave),
so a move refused here is also refused by the database.
"""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """The state of a job."""

    #: Waiting for other jobs to finish before it may be queued.
    #: Moved to ``queued`` when its dependencies are final.
    WAITING = "waiting"

    #: Ready to run once ``run_at`` has passed (a future ``run_at`` is shown
    #: as *scheduled*). A worker moves it to ``running`` when it claims it.
    QUEUED = "queued"

    #: Paused by a person; no worker claims it until it is resumed.
    HELD = "held"

    #: Claimed by a worker holding a lease. The worker moves it to a final
    #: state, or back to ``queued`` for a retry, a snooze or a shutdown;
    #: any worker moves it back to ``queued`` (or ``failed``) when the lease
    #: lapses.
    RUNNING = "running"

    #: Final: the task returned; its result is stored.
    SUCCEEDED = "succeeded"

    #: Final: the last attempt raised and no attempt is left, or the error
    #: was not one the task retries on.
    FAILED = "failed"

    #: Final: stopped on request before it could finish.
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for the states a job never leaves by itself."""
        return self in FINAL_STATES


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.WAITING: frozenset({JobState.QUEUED, JobState.HELD, JobState.CANCELLED}),
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.HELD, JobState.CANCELLED}),
    JobState.HELD: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.CANCELLED,
            # A retry after back-off, a snooze, a shutdown or a rescue.
            JobState.QUEUED,
        }
    ),
    # Restart and retry put a final job back in line, keeping its history.
    JobState.SUCCEEDED: frozenset({JobState.QUEUED}),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}


def can_transition(current: JobState, target: JobState) -> bool:
    """Tell whether a job in ``current`` may move to ``target``.

    >>> can_transition(JobState.QUEUED, JobState.RUNNING)
    True
    >>> can_transition(JobState.SUCCEEDED, JobState.RUNNING)
    False
    """
    return target in _ALLOWED[current]


def sources_of(target: JobState) -> frozenset[JobState]:
    """Return every state from which a job may move to ``target``."""
    return frozenset(state for state, allowed in _ALLOWED.items() if target in allowed)
