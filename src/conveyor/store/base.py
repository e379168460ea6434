"""The store contract: every operation Conveyor needs from its database.

``Store`` is the only interface the rest of Conveyor uses to reach a
database; ``sqlite.py`` and ``postgres.py`` fulfil it, and the contract tests
in ``tests/store`` run unchanged against both.

Rules every implementation keeps:

- Each operation is one transaction: it happens whole or not at all.
- Time is passed in (``now``), never read from the clock, so tests move it.
- Every change of a job's state writes an event (from, to, reason, actor).
  The reasons are fixed words a reader can filter on: ``enqueued``,
  ``claimed``, ``succeeded``, ``failed``, ``retry``, ``timed out``,
  ``snoozed``, ``interrupted`` and ``lease lapsed``.
- Finishing or rescuing a job clears its ``worker_id`` and lease.
- A state change names, in its SQL, the states it may leave (see
  ``conveyor.states``), so a concurrent change can never be overwritten.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..records import (
    AttemptRecord,
    ClaimedJob,
    EventRecord,
    JobFilter,
    JobRecord,
    NewJob,
    Outcome,
    Rescued,
    WorkerInfo,
)
from ..states import JobState


class Store(abc.ABC):
    """A database holding jobs, their attempts, their events and the workers.

    Capability flags tell callers what a store can do, instead of
    ``isinstance`` checks.
    """

    #: "sqlite" or "postgresql".
    dialect: str = ""

    #: The database URL the store was opened with (it may hold a password:
    #: redact it before showing it).
    url: str = ""

    #: True when ``wait_for_work`` is woken by the database itself as soon as
    #: another process commits a job (PostgreSQL's LISTEN/NOTIFY), rather
    #: than by polling.
    pushes_wakeups: bool = False

    #: True when ``enqueue`` accepts an application's own open connection.
    accepts_connection: bool = False

    # -- schema -----------------------------------------------------------

    @abc.abstractmethod
    def migrate(self) -> list[int]:
        """Create or upgrade the schema; return the versions applied now.

        Safe to run any number of times and from several processes at once:
        a second run applies nothing and returns ``[]``.
        """

    @abc.abstractmethod
    def schema_version(self) -> int:
        """Return the highest migration applied, or 0 on an empty database."""

    # -- the hot path -----------------------------------------------------

    @abc.abstractmethod
    def enqueue(
        self,
        jobs: Sequence[NewJob],
        now: datetime,
        *,
        actor: str = "api",
        connection: Any = None,
    ) -> list[int]:
        """Insert ``jobs`` in one transaction; return their ids in order.

        A job whose ``run_at`` is ``None`` may run at once. With
        ``connection`` (where ``accepts_connection``), the rows are written
        on the caller's connection inside the caller's transaction, so they
        exist only if that transaction commits. Raises ``StoreError`` when
        the transaction did not commit: no id is ever returned for a row
        that does not exist.
        """

    @abc.abstractmethod
    def claim(
        self,
        worker_id: str,
        queues: Sequence[str] | None,
        limit: int,
        lease: float,
        now: datetime,
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` queued jobs whose ``run_at`` has passed.

        Highest ``priority`` first, then oldest ``run_at``, then lowest id.
        ``queues`` of ``None`` serves every queue. Each claimed job moves to
        ``running`` with ``attempts`` raised by one, the lease held by
        ``worker_id`` until ``now + lease`` seconds, an open attempt row and
        an event. No job is ever claimed by two workers at once.
        """

    @abc.abstractmethod
    def heartbeat(
        self, worker_id: str, job_ids: Sequence[int], lease: float, now: datetime
    ) -> set[int]:
        """Extend the leases ``worker_id`` holds on ``job_ids`` to ``now + lease``.

        Returns the ids whose lease is still held; any id missing from the
        answer was rescued or changed by someone else and its result will be
        refused.
        """

    @abc.abstractmethod
    def finish(
        self, worker_id: str, outcomes: Sequence[Outcome], now: datetime
    ) -> list[int]:
        """Record the end of attempts, in one transaction; return accepted ids.

        An outcome is accepted only if its job is still ``running`` under
        ``worker_id`` with ``attempts == outcome.attempt`` (the late-result
        guard); others are silently refused and left out of the answer.

        - SUCCEEDED: final, result stored.
        - FAILED: final, error stored.
        - RETRY: ``queued`` again at ``outcome.run_at``, error stored.
        - SNOOZED and INTERRUPTED: ``queued`` at ``outcome.run_at`` (or
          ``now``), and ``attempts`` lowered by one so the attempt does not
          count against ``max_attempts``.
        """

    @abc.abstractmethod
    def rescue(self, now: datetime, *, actor: str, limit: int = 500) -> list[Rescued]:
        """Take back running jobs whose lease lapsed before ``now``.

        Each is recorded as a ``lost`` attempt, then queued to run at once,
        or failed when its attempts are used up. Safe to call from any
        number of workers at once: a job is rescued once.
        """

    # -- reading ----------------------------------------------------------

    @abc.abstractmethod
    def get_job(self, job_id: int) -> JobRecord | None:
        """Return one job, or ``None`` when no job has that id."""

    @abc.abstractmethod
    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        """Return jobs matching ``where``, newest (highest id) first."""

    @abc.abstractmethod
    def count_jobs(self, queue: str | None = None) -> dict[JobState, int]:
        """Return how many jobs are in each state (states with none omitted)."""

    @abc.abstractmethod
    def list_attempts(self, job_id: int) -> list[AttemptRecord]:
        """Return a job's attempts, oldest first."""

    @abc.abstractmethod
    def list_events(self, job_id: int) -> list[EventRecord]:
        """Return a job's changes of state, oldest first."""

    # -- waiting ----------------------------------------------------------

    @abc.abstractmethod
    def wait_for_work(self, timeout: float) -> bool:
        """Block until a job may have been enqueued, or ``timeout`` seconds.

        Returns True when woken by a hint. Hints may be lost or spurious;
        callers claim after every return either way.
        """

    @abc.abstractmethod
    def wake(self) -> None:
        """Wake this process's ``wait_for_work`` callers at once."""

    # -- workers ----------------------------------------------------------

    @abc.abstractmethod
    def register_worker(self, worker: WorkerInfo) -> None:
        """Record a starting worker (or replace the record with the same id)."""

    @abc.abstractmethod
    def beat_worker(self, worker_id: str, running_jobs: int, now: datetime) -> None:
        """Record that a worker is alive, with how many jobs it runs."""

    @abc.abstractmethod
    def stop_worker(self, worker_id: str, now: datetime) -> None:
        """Record that a worker stopped cleanly."""

    @abc.abstractmethod
    def mark_dead_workers(self, stale_before: datetime) -> list[str]:
        """Mark running workers whose last heartbeat is older than ``stale_before``
        as dead; return their ids."""

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerInfo]:
        """Return every worker on record, most recently started first."""

    # -- housekeeping -----------------------------------------------------

    @abc.abstractmethod
    def prune(self, finished_before: datetime, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` final jobs finished before ``finished_before``,
        with their attempts and events; return how many jobs were deleted."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection. The store is unusable afterwards."""
