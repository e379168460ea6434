"""The watchdog loop (thread pool only): time out attempts that run too long.

A thread cannot be killed, so an attempt past its ``timeout`` is recorded as
timed out (and retried or failed like any error) while its thread runs on
until the function returns; whatever it returns then is dropped. The slot
stays busy until then, so hung functions reduce the worker's concurrency:
use the process pool for code that can hang.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING

from .. import _runner
from ._faults import survive

if TYPE_CHECKING:
    from ._worker import Worker

logger = logging.getLogger(__name__)

#: How often running attempts are checked against their timeout, in seconds.
CHECK_INTERVAL = 0.1


def run(worker: Worker) -> None:
    """Check timeouts until the worker has stopped."""
    while not worker.stopped.wait(CHECK_INTERVAL):
        survive("watchdog", lambda: check(worker, time.monotonic()), worker.stopped)


def check(worker: Worker, now: float) -> None:
    """Time out every attempt whose deadline is before ``now``."""
    for entry in worker.inflight.snapshot():
        deadline = entry.deadline
        if deadline is None or deadline > now:
            continue
        finished = worker.completer.prepare(entry, _runner.timed_out(entry.job))
        if not worker.inflight.abandon(
            entry, then=partial(worker.completer.submit, finished)
        ):
            continue

        job = entry.job
        logger.warning(
            "Job %s ran past its timeout of %s s; its thread runs on, its "
            "result will be dropped",
            job.id,
            job.timeout,
            extra={"job_id": job.id, "task": job.task, "attempt": job.attempt},
        )
