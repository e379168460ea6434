"""The jobs a worker holds right now: running in a slot, or claimed ahead.

Every loop of the worker reads or changes this one registry under its lock:
the claimer waits here for free slots, slots report calls that ended, the
heartbeat lists what to renew, the watchdog and the heartbeat abandon
attempts whose result must no longer be reported.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..records import ClaimedJob


@dataclass(slots=True)
class Running:
    """One attempt in progress in this worker."""

    job: ClaimedJob
    claimed: float = field(default_factory=time.monotonic)
    started: float | None = None  # when a slot began the call; None if waiting
    abandoned: bool = False  # its result will not be reported

    def start(self) -> None:
        """Mark the call as begun: its timeout counts from now."""
        self.started = time.monotonic()

    @property
    def deadline(self) -> float | None:
        """Monotonic time past which the attempt has timed out."""
        if self.job.timeout is None or self.started is None:
            return None
        return self.started + self.job.timeout


class InFlight:
    """The registry of held attempts, bounded by concurrency plus prefetch."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._running: dict[int, Running] = {}
        self._busy = 0  # slots in use, counting calls that were abandoned
        self._changed = threading.Condition()

    def free_slots(self) -> int:
        with self._changed:
            return self.capacity - self._busy

    def wait_for_slot(self, timeout: float) -> bool:
        """Block until a slot is free or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(lambda: self._busy < self.capacity, timeout)

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until no attempt is running or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._running, timeout)

    def start(self, job: ClaimedJob) -> Running:
        with self._changed:
            entry = self._running[job.id] = Running(job)
            self._busy += 1
            return entry

    def end(self, entry: Running, *, free_slot: bool = True) -> bool:
        """Forget an attempt; True if its result should still be reported."""
        with self._changed:
            if self._running.get(entry.job.id) is entry:
                del self._running[entry.job.id]
            if free_slot:
                self._busy -= 1
            self._changed.notify_all()
            return not entry.abandoned

    def abandon(self, entry: Running) -> bool:
        """Stop tracking an attempt whose slot stays busy; True if it was live.

        An attempt that already ended (its result is on its way to the
        store) is not live: callers act on a snapshot, and must not report
        a second outcome for it or say its result will be dropped.
        """
        with self._changed:
            if entry.abandoned or self._running.get(entry.job.id) is not entry:
                return False
            entry.abandoned = True
            del self._running[entry.job.id]
            self._changed.notify_all()
            return True

    def snapshot(self) -> list[Running]:
        with self._changed:
            return list(self._running.values())

    def __len__(self) -> int:
        with self._changed:
            return len(self._running)
