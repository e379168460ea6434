"""Riding out faults: one warning per database outage, then quiet back-off;
and no loop of the worker ever dies of an error it did not expect.

When the database restarts or drops connections, every loop of the worker
fails at once. They share one ``FaultBackoff``, so the outage is logged once
as a warning, each loop waits a growing delay before trying again, and the
recovery is logged once when any operation succeeds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: First and longest wait between retries after a store error, in seconds.
FIRST_DELAY = 0.1
MAX_DELAY = 5.0


class FaultBackoff:
    """The worker-wide record of whether the store is failing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing = False
        self._delay = FIRST_DELAY

    @property
    def failing(self) -> bool:
        return self._failing

    def failed(self, operation: str, error: BaseException) -> None:
        with self._lock:
            if not self._failing:
                logger.warning(
                    "The store failed during %s; retrying with back-off: %s",
                    operation,
                    error,
                )
            else:
                logger.debug("The store failed again during %s: %s", operation, error)
            self._failing = True

    def succeeded(self, operation: str) -> None:
        if not self._failing:
            return
        with self._lock:
            if self._failing:
                logger.warning("The store is reachable again (%s succeeded)", operation)
            self._failing = False
            self._delay = FIRST_DELAY

    def sleep(self, stop: threading.Event) -> None:
        """Wait the current delay (or until ``stop``), then lengthen it."""
        with self._lock:
            delay = self._delay
            self._delay = min(self._delay * 2, MAX_DELAY)
        stop.wait(delay)


#: Seconds a loop pauses after an unexpected error before its next round.
UNEXPECTED_PAUSE = 1.0


def survive(name: str, step: Callable[[], object], pause: threading.Event) -> None:
    """Run one round of a loop; log an unexpected error and pause, never die.

    Store errors are handled inside each loop; this is the net under it, so
    a bug costs one round of one loop, not the loop for the worker's life.
    """
    try:
        step()
    except Exception:
        logger.exception("The %s loop failed; it carries on", name)
        pause.wait(UNEXPECTED_PAUSE)
