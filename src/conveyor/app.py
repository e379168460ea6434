"""``Conveyor``: the application object that owns the task registry and the store."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, overload

from . import _runner
from .backoff import Backoff, Exponential
from .errors import ConfigurationError, UnknownTaskError
from .job import Job
from .records import Outcome, OutcomeKind
from .store import DEFAULT_URL, Store, open_store
from .task import Call, Task

P = ParamSpec("P")
R = TypeVar("R")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What ``Conveyor.drain`` did, counted by outcome."""

    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    snoozed: int = 0

    @property
    def total(self) -> int:
        """Every attempt the drain ran."""
        return self.succeeded + self.failed + self.retried + self.snoozed


class Conveyor:
    """Tasks and the store they are queued in.

    >>> app = Conveyor()  # CONVEYOR_DATABASE_URL, else sqlite:///conveyor.db
    >>> @app.task
    ... def add(a: int, b: int) -> int:
    ...     return a + b
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        store: Store | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.database_url = (
            database_url or os.environ.get("CONVEYOR_DATABASE_URL") or DEFAULT_URL
        )
        self._store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self.tasks: dict[str, Task[Any, Any]] = {}

    @property
    def store(self) -> Store:
        """The store, opened on first use (importing tasks opens nothing)."""
        if self._store is None:
            self._store = open_store(self.database_url)
        return self._store

    def use_database(self, database_url: str) -> None:
        """Point the app at another database, closing the current store."""
        self.close()
        self.database_url = database_url

    def close(self) -> None:
        """Close the store's connections."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def migrate(self) -> list[int]:
        """Create or upgrade the schema; return the versions applied."""
        return self.store.migrate()

    # -- tasks ------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 3,
        backoff: Backoff | None = None,
        timeout: float | None = None,
        retry_on: Sequence[type[BaseException]] = (Exception,),
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 3,
        backoff: Backoff | None = None,
        timeout: float | None = None,
        retry_on: Sequence[type[BaseException]] = (Exception,),
    ) -> Any:
        """Register a function as a task, with or without options.

        Options: ``name`` (default ``module.function``), ``queue``,
        ``priority`` (higher first), ``max_attempts``, ``backoff``,
        ``timeout`` (seconds), ``retry_on`` (exception types that are
        retried; any other exception fails the job at once).
        """
        options: dict[str, Any] = {
            "name": name,
            "queue": queue,
            "priority": priority,
            "max_attempts": max_attempts,
            "backoff": backoff or Exponential(),
            "timeout": timeout,
            # A lone class (retry_on=ValueError) is left as it is, so that
            # the task refuses it by name instead of tuple() failing here.
            "retry_on": (
                tuple(retry_on) if isinstance(retry_on, Iterable) else retry_on
            ),
        }
        if fn is not None:
            return self._register(fn, options)
        return lambda inner: self._register(inner, options)

    def _register(self, fn: Callable[P, R], options: dict[str, Any]) -> Task[P, R]:
        name = options["name"]
        if name is None:
            name = f"{fn.__module__}.{fn.__qualname__}"
        task = Task(fn, self, **{**options, "name": name})

        existing = self.tasks.get(name)
        if existing is not None and existing.fn is not fn:
            raise ConfigurationError(
                f"task name {name!r} is already taken by {existing.fn!r}; "
                "pass name= to register this function under another name"
            )
        self.tasks[name] = task
        return task

    def get_task(self, name: str) -> Task[Any, Any]:
        """Return the task registered under ``name``."""
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise UnknownTaskError(f"no task is named {name!r}; known tasks: {known}")

    # -- jobs -------------------------------------------------------------

    def enqueue_many(
        self, calls: Iterable[Call], *, connection: Any = None, actor: str = "api"
    ) -> list[Job]:
        """Store many jobs in one transaction; return them in order.

        >>> app.enqueue_many(add.call(i, i) for i in range(1000))  # doctest: +SKIP

        With ``connection`` (PostgreSQL only), the jobs are written inside
        the caller's open transaction and exist only if it commits.
        ``actor`` is recorded as who enqueued them.
        """
        now = self.clock()
        rows = [self._checked(call).to_new_job(now) for call in calls]
        ids = self.store.enqueue(rows, now, actor=actor, connection=connection)

        return [Job(self.store, job_id) for job_id in ids]

    def _checked(self, call: Call) -> Call:
        registered = self.get_task(call.task.name)
        if registered.fn is not call.task.fn:
            raise UnknownTaskError(
                f"task {call.task.name!r} is registered here with "
                f"{registered.fn!r}, not {call.task.fn!r}; enqueue it on the "
                "app that registered it"
            )
        return call

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Job:
        """Enqueue a task by name: ``app.enqueue("emails.send", "ada@x")``.

        Raises ``UnknownTaskError`` when no task has that name.
        """
        return self.get_task(name).enqueue(*args, **kwargs)

    def job(self, job_id: int) -> Job:
        """Return the job with this id, read now."""
        return Job(self.store, job_id).refresh()

    # -- running jobs in-process ------------------------------------------

    def drain(
        self, queues: Sequence[str] | None = None, *, max_jobs: int | None = None
    ) -> DrainReport:
        """Run due jobs here, one at a time, until none is left; for tests.

        Retries whose back-off has not passed yet, and scheduled jobs, are
        left queued; a job that snoozes runs at most once per drain. Task
        timeouts are not enforced here.

        >>> app.drain()  # doctest: +SKIP
        DrainReport(succeeded=3, failed=0, retried=0, snoozed=0)
        """
        counts = dict.fromkeys(OutcomeKind, 0)
        worker_id = f"drain-{os.getpid()}"
        snoozed: set[int] = set()

        while max_jobs is None or sum(counts.values()) < max_jobs:
            claimed = self.store.claim(worker_id, queues, 1, 3600.0, self.clock())
            if not claimed:
                break
            job = claimed[0]
            if job.id in snoozed:
                # A job that snoozes into the past would be claimed for ever:
                # put it back uncounted and end the drain.
                back = Outcome(job.id, job.attempt, OutcomeKind.INTERRUPTED)
                self.store.finish(worker_id, [back], self.clock())
                break
            call = _runner.run_call(self, job)
            outcome = _runner.decide(self, job, call, self.clock(), self.rng)
            self.store.finish(worker_id, [outcome], self.clock())
            counts[outcome.kind] += 1
            if outcome.kind is OutcomeKind.SNOOZED:
                snoozed.add(job.id)

        return DrainReport(
            counts[OutcomeKind.SUCCEEDED],
            counts[OutcomeKind.FAILED],
            counts[OutcomeKind.RETRY],
            counts[OutcomeKind.SNOOZED],
        )
