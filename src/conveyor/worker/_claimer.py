"""The claimer loop: take due jobs from the store whenever a slot is free.

It claims as many jobs as there are free slots, in one statement, and hands
them to the pool. When nothing was due it waits for the store's wake-up hint
(a LISTEN notification on PostgreSQL, a commit seen on SQLite) or for
``poll_interval``, whichever comes first, so a new job starts within
milliseconds and a job due later starts at most one interval late.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..records import ClaimedJob
from ._faults import survive

if TYPE_CHECKING:
    from ._worker import Worker

logger = logging.getLogger(__name__)


def run(worker: Worker) -> None:
    """Claim and dispatch until the worker stops claiming."""
    step = functools.partial(_step, worker)
    while not worker.stopping.is_set():
        survive("claimer", step, worker.stopping)


def _step(worker: Worker) -> None:
    settings = worker.settings
    if not worker.inflight.wait_for_slot(settings.poll_interval):
        return

    claimed = _claim(worker, worker.inflight.free_slots())
    if claimed is None:
        worker.backoff.sleep(worker.stopping)
        return

    entries = [worker.inflight.start(job) for job in claimed]
    if worker.stopping.is_set():
        # Stopping began while this claim was on its way: nothing new
        # starts now, the jobs go straight back.
        worker.put_back(entries, "was claimed as the worker stopped", taken=True)
        return
    for entry in entries:
        worker.pool.submit(entry)

    if not claimed:
        worker.store.wait_for_work(settings.poll_interval)


def _claim(worker: Worker, limit: int) -> list[ClaimedJob] | None:
    try:
        claimed = worker.store.claim(
            worker.id,
            worker.settings.queues,
            limit,
            worker.settings.lease,
            worker.app.clock(),
        )
    except StoreError as error:
        worker.backoff.failed("claim", error)
        return None

    worker.backoff.succeeded("claim")
    if claimed:
        logger.debug("Claimed %d jobs", len(claimed))
    return list(claimed)
