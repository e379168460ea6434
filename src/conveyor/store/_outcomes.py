"""How a reported outcome maps onto job states, attempt outcomes and events.

Both stores share these rules so that the same outcome is recorded the same
way whatever the database.
"""

from __future__ import annotations

from ..records import AttemptOutcome, Outcome, OutcomeKind
from ..states import JobState

_JOB_STATE = {
    OutcomeKind.SUCCEEDED: JobState.SUCCEEDED,
    OutcomeKind.FAILED: JobState.FAILED,
    OutcomeKind.RETRY: JobState.QUEUED,
    OutcomeKind.SNOOZED: JobState.QUEUED,
    OutcomeKind.INTERRUPTED: JobState.QUEUED,
}

#: Outcomes whose attempt does not count against ``max_attempts``.
UNCOUNTED = frozenset({OutcomeKind.SNOOZED, OutcomeKind.INTERRUPTED})


def job_state_of(kind: OutcomeKind) -> JobState:
    """The state a job moves to when its attempt ends this way."""
    return _JOB_STATE[kind]


def attempt_outcome_of(outcome: Outcome) -> AttemptOutcome:
    """The outcome recorded on the attempt row."""
    match outcome.kind:
        case OutcomeKind.SUCCEEDED:
            return AttemptOutcome.SUCCEEDED
        case OutcomeKind.SNOOZED:
            return AttemptOutcome.SNOOZED
        case OutcomeKind.INTERRUPTED:
            return AttemptOutcome.INTERRUPTED
        case _ if outcome.error is not None and outcome.error.timed_out:
            return AttemptOutcome.TIMED_OUT
        case _:
            return AttemptOutcome.FAILED


def event_reason_of(outcome: Outcome) -> str:
    """The reason written on the event of the state change."""
    if outcome.error is not None and outcome.error.timed_out:
        return "timed out"
    return outcome.kind.value


def keeps_error(outcome: Outcome) -> bool:
    """True when the job keeps the error of its last failed attempt.

    A success clears it (the attempts keep their own errors); a snooze or
    an interruption, which carry no error, leave it as it was.
    """
    return outcome.error is None and outcome.kind is not OutcomeKind.SUCCEEDED
