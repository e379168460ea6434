"""The rescuer loop: take back jobs whose worker stopped renewing their lease.

Every ``rescue_interval`` it asks the store to rescue running jobs whose
lease lapsed (each becomes a new attempt, or fails when none is left) and
marks workers that stopped heartbeating as dead. Any number of workers can
run this at once: the store rescues each job once.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from ..errors import StoreError
from ._faults import survive

if TYPE_CHECKING:
    from ._worker import Worker

logger = logging.getLogger(__name__)


def run(worker: Worker) -> None:
    """Rescue until the worker stops claiming."""
    step = functools.partial(sweep, worker)
    while not worker.stopping.wait(worker.settings.rescue_interval):
        survive("rescuer", step, worker.stopping)


def sweep(worker: Worker) -> int:
    """Rescue every lapsed lease once; return how many jobs were rescued."""
    now = worker.app.clock()
    stale_before = now - timedelta(seconds=worker.settings.dead_after)
    try:
        rescued = worker.store.rescue(now, actor=worker.id)
        dead = worker.store.mark_dead_workers(stale_before)
    except StoreError as error:
        worker.backoff.failed("rescue", error)
        return 0

    worker.backoff.succeeded("rescue")
    for worker_id in dead:
        logger.warning("Worker %s stopped heartbeating; marked dead", worker_id)
    for job in rescued:
        logger.warning(
            "Rescued job %s after the lease of worker %s lapsed; it is now %s",
            job.job_id,
            job.worker_id,
            job.state.value,
            extra={"job_id": job.job_id, "attempt": job.attempt},
        )
    return len(rescued)
