"""The pruner loop: delete final jobs older than ``prune_after``.

Every ``prune_interval`` it deletes finished jobs (with their attempts and
events) in batches of ``prune_batch``, one transaction each, so a large
backlog never holds long locks. Any number of workers may prune at once:
each batch takes rows no other pruner holds, so no row is deleted twice.
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

#: Most batches one sweep deletes before yielding to the next interval.
MAX_BATCHES_PER_SWEEP = 100


def run(worker: Worker) -> None:
    """Prune until the worker stops claiming."""
    step = functools.partial(sweep, worker)
    while not worker.stopping.wait(worker.settings.prune_interval):
        survive("pruner", step, worker.stopping)


def sweep(worker: Worker) -> int:
    """Delete every final job past its age, batch by batch; return how many."""
    after = worker.settings.prune_after
    if after is None:
        return 0

    cutoff = worker.app.clock() - timedelta(seconds=after)
    batch = worker.settings.prune_batch
    deleted = 0
    for _ in range(MAX_BATCHES_PER_SWEEP):
        if worker.stopping.is_set():
            break
        try:
            count = worker.store.prune(cutoff, limit=batch)
        except StoreError as error:
            worker.backoff.failed("prune", error)
            break
        deleted += count
        if count < batch:
            break

    if deleted:
        logger.info("Pruned %d jobs finished before %s", deleted, cutoff.isoformat())
    return deleted
