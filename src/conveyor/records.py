"""Values that cross the store contract: what is written and what is read back.

All are frozen dataclasses. Times are timezone-aware ``datetime`` objects in
UTC; JSON payloads travel as already-encoded ``str`` so the stores never
decide how Python values are encoded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from .states import JobState


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert. ``args_json`` and ``kwargs_json`` are encoded JSON."""

    task: str
    args_json: str = "[]"
    kwargs_json: str = "{}"
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    run_at: datetime | None = None  # None means "as soon as possible"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored, read back whole."""

    id: int
    task: str
    queue: str
    priority: int
    state: JobState
    args_json: str
    kwargs_json: str
    attempts: int
    max_attempts: int
    timeout: float | None
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    worker_id: str | None
    lease_expires_at: datetime | None
    result_json: str | None
    error_type: str | None
    error_message: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker has just claimed; ``attempt`` numbers this run from 1."""

    id: int
    task: str
    queue: str
    args_json: str
    kwargs_json: str
    attempt: int
    max_attempts: int
    timeout: float | None


class OutcomeKind(enum.StrEnum):
    """How an attempt ended, as the worker reports it."""

    SUCCEEDED = "succeeded"  # the job is final, with its result
    FAILED = "failed"  # the job is final, with its error
    RETRY = "retry"  # the attempt failed; the job runs again at ``run_at``
    SNOOZED = "snoozed"  # runs again at ``run_at``; the attempt is not counted
    INTERRUPTED = "interrupted"  # a shutdown put it back; not counted


class AttemptOutcome(enum.StrEnum):
    """How an attempt ended, as the attempts table records it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SNOOZED = "snoozed"
    INTERRUPTED = "interrupted"
    LOST = "lost"  # its worker's lease lapsed and another worker rescued it


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception as stored: its type name, message and formatted traceback."""

    type: str
    message: str
    traceback: str | None = None
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one attempt, reported by the worker that ran it.

    The store accepts it only while that worker still holds the job's lease
    for that same attempt; a late report from a worker that lost its lease
    is refused, so each attempt has exactly one outcome.
    """

    job_id: int
    attempt: int
    kind: OutcomeKind
    result_json: str | None = None
    error: ErrorInfo | None = None
    run_at: datetime | None = None  # for RETRY and SNOOZED


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One execution of a job."""

    job_id: int
    attempt: int
    worker_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: AttemptOutcome | None
    error_type: str | None
    error_message: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One change of a job's state, with why and by whom."""

    id: int
    job_id: int
    at: datetime
    from_state: JobState | None
    to_state: JobState
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class Rescued:
    """A job whose lease lapsed, and where the rescue put it."""

    job_id: int
    attempt: int
    worker_id: str | None
    state: JobState


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker as the registry stores it."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    pool: str
    started_at: datetime
    heartbeat_at: datetime
    state: str  # "running", "stopped" or "dead"
    running_jobs: int = 0


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What ``Store.list_jobs`` returns; every field left ``None`` matches all."""

    state: JobState | None = None
    queue: str | None = None
    task: str | None = None
    before_id: int | None = None  # keyset pagination: ids below this one
    limit: int = 50
