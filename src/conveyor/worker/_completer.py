"""The completer loop: write the outcomes of finished attempts, many per commit.

Slots report calls as they end; this loop turns each into an outcome
(success, retry after back-off, failure, snooze) and writes all that are
waiting in one transaction, so a busy worker pays one commit for many jobs.
An outcome the store could not write is kept and written again; one the
store refused (the lease was lost) is dropped, as the job now belongs to
whoever rescued it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import _runner
from ..errors import StoreError
from ..records import Outcome, OutcomeKind
from ._inflight import Running

if TYPE_CHECKING:
    from ._worker import Worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Finished:
    """An attempt that ended, waiting to be written."""

    entry: Running
    outcome: Outcome
    ended: float


class Completer:
    """Collects ended attempts and writes them in batches."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._inbox: queue.SimpleQueue[Finished | None] = queue.SimpleQueue()
        # Jobs whose outcome is decided but not yet written: their leases
        # are still renewed, so an outage longer than the lease does not
        # get a finished job rescued and run again.
        self._unwritten: set[int] = set()
        self._unwritten_lock = threading.Lock()

    def unwritten(self) -> list[int]:
        """Ids of jobs whose outcome waits to be written."""
        with self._unwritten_lock:
            return list(self._unwritten)

    def prepare(self, entry: Running, call: _runner.CallResult) -> Finished:
        """Decide what an ended call means (done, retry, fail, snooze)."""
        worker = self._worker
        outcome = _runner.decide(
            worker.app, entry.job, call, worker.app.clock(), worker.app.rng
        )
        return Finished(entry, outcome, time.monotonic())

    def interrupted(self, entry: Running) -> Finished:
        """The outcome of an attempt put back by a shutdown."""
        job = entry.job
        outcome = Outcome(job.id, job.attempt, OutcomeKind.INTERRUPTED)
        return Finished(entry, outcome, time.monotonic())

    def submit(self, finished: Finished) -> None:
        """Queue an outcome for writing (called under the InFlight lock)."""
        with self._unwritten_lock:
            self._unwritten.add(finished.outcome.job_id)
        self._inbox.put(finished)

    def close(self) -> None:
        """Ask the loop to write what is waiting and end."""
        self._inbox.put(None)

    def run(self) -> None:
        """Write batches until closed, then write what is left."""
        pending: list[Finished] = []
        closed = False
        while not closed or pending:
            if not closed:
                closed = self._collect(pending)
            if pending and not self._write(pending):
                if self._worker.abandon_writes.is_set():
                    return
                self._worker.backoff.sleep(self._worker.abandon_writes)

    def _collect(self, pending: list[Finished]) -> bool:
        limit = self._worker.settings.finish_batch
        block = not pending
        while len(pending) < limit:
            try:
                item = self._inbox.get(block=block, timeout=None)
            except queue.Empty:
                return False
            if item is None:
                return True
            pending.append(item)
            block = False
        return False

    def _write(self, pending: list[Finished]) -> bool:
        worker = self._worker
        outcomes = [item.outcome for item in pending]
        try:
            accepted = set(worker.store.finish(worker.id, outcomes, worker.app.clock()))
        except StoreError as error:
            worker.backoff.failed("finish", error)
            return False

        worker.backoff.succeeded("finish")
        with self._unwritten_lock:
            self._unwritten.difference_update(outcome.job_id for outcome in outcomes)
        for item in pending:
            _log(item, item.outcome.job_id in accepted)
        worker.count_finished(pending, accepted)
        pending.clear()
        return True


def _log(item: Finished, accepted: bool) -> None:
    job = item.entry.job
    outcome = item.outcome
    if (
        accepted
        and outcome.kind is OutcomeKind.SUCCEEDED
        and not logger.isEnabledFor(logging.INFO)
    ):
        return  # the common case at high throughput: nothing to build
    extra = {
        "job_id": job.id,
        "task": job.task,
        "queue": job.queue,
        "attempt": job.attempt,
        "duration": round(item.ended - (item.entry.started or item.entry.claimed), 6),
        "outcome": outcome.kind.value,
    }
    if not accepted:
        logger.warning(
            "Result of job %s attempt %s refused: its lease was lost",
            job.id,
            job.attempt,
            extra=extra,
        )
        return

    error = outcome.error
    if outcome.kind is OutcomeKind.FAILED:
        logger.error(
            "Job %s (%s) failed for good on attempt %s: %s: %s%s",
            job.id,
            job.task,
            job.attempt,
            error.type if error else "",
            error.message if error else "",
            f"\n{error.traceback.rstrip()}" if error and error.traceback else "",
            extra=extra,
        )
        return

    if outcome.kind is OutcomeKind.RETRY and error is not None:
        logger.info(
            "Job %s (%s) attempt %s failed in %.3f s (%s: %s); retrying at %s",
            job.id,
            job.task,
            job.attempt,
            extra["duration"],
            error.type,
            error.message,
            outcome.run_at.isoformat(timespec="milliseconds")
            if outcome.run_at
            else "once",
            extra=extra,
        )
        return

    logger.info(
        "Job %s (%s) attempt %s %s in %.3f s",
        job.id,
        job.task,
        job.attempt,
        _VERBS[outcome.kind],
        extra["duration"],
        extra=extra,
    )


_VERBS = {
    OutcomeKind.SUCCEEDED: "succeeded",
    OutcomeKind.SNOOZED: "snoozed",
    OutcomeKind.INTERRUPTED: "was interrupted and put back",
}
