"""The heartbeat loop: renew the leases of running jobs and say the worker lives.

Every ``heartbeat_interval`` it extends the lease of each job this worker
runs, or has finished but not yet written the outcome of, and records
the worker's heartbeat in the registry. A job whose lease was not
renewed (someone rescued it while this worker was cut off or paused) is
abandoned here: its result will not be reported.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from ..errors import StoreError
from ._faults import survive

if TYPE_CHECKING:
    from ._worker import Worker

logger = logging.getLogger(__name__)


def run(worker: Worker) -> None:
    """Beat until the worker has stopped."""
    step = functools.partial(beat, worker)
    while not worker.stopped.wait(worker.settings.heartbeat_interval):
        survive("heartbeat", step, worker.stopped)


def beat(worker: Worker) -> None:
    """Renew every lease once and record the worker's heartbeat."""
    running = worker.inflight.snapshot()
    now = worker.app.clock()
    try:
        ids = [entry.job.id for entry in running] + worker.completer.unwritten()
        held = worker.store.heartbeat(worker.id, ids, worker.settings.lease, now)
        worker.store.beat_worker(worker.id, len(running), now)
    except StoreError as error:
        worker.backoff.failed("heartbeat", error)
        return

    worker.backoff.succeeded("heartbeat")
    for entry in running:
        if entry.job.id not in held and worker.inflight.abandon(entry):
            logger.warning(
                "Lost the lease on job %s attempt %s; its result will be dropped",
                entry.job.id,
                entry.job.attempt,
                extra={"job_id": entry.job.id, "attempt": entry.job.attempt},
            )
