"""The jobs a worker holds right now: running in a slot, or claimed ahead.

Every loop of the worker reads or changes this one registry under its lock:
the claimer waits here for room, slots report calls that ended, the
heartbeat lists what to renew, the watchdog and the heartbeat abandon
attempts whose result must no longer be reported.

Whoever ends or abandons an attempt hands its outcome over *inside* the
lock (``then``), so once the registry is empty every outcome is already on
its way to the store, and no attempt ever gets two outcomes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..records import ClaimedJob


@dataclass(slots=True)
class Running:
    """One attempt held by this worker."""

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
    """The registry of held attempts, bounded by concurrency plus prefetch.

    ``busy`` counts places taken, including calls that were abandoned but
    whose thread still runs (``hung``): those keep their slot until the
    function returns.
    """

    def __init__(self, slots: int, prefetch: int = 0) -> None:
        self.slots = slots
        self.capacity = slots + prefetch
        self._running: dict[int, Running] = {}
        self._busy = 0
        self._hung = 0
        self._changed = threading.Condition()

    def free_slots(self) -> int:
        """How many more jobs to claim now; none while every slot is hung,
        since jobs claimed ahead would wait behind calls that never end."""
        with self._changed:
            return self._room()

    def _room(self) -> int:
        if self._hung >= self.slots:
            return 0
        return self.capacity - self._busy

    def wait_for_slot(self, timeout: float) -> bool:
        """Block until there is room to claim or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(lambda: self._room() > 0, timeout)

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until no attempt is held or ``timeout`` passes."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._running, timeout)

    def start(self, job: ClaimedJob) -> Running:
        with self._changed:
            entry = self._running[job.id] = Running(job)
            self._busy += 1
            return entry

    def end(self, entry: Running, then: Callable[[], None] | None = None) -> bool:
        """Free an attempt's place; if it was live, run ``then`` and return True.

        ``then`` (handing the outcome to the completer) runs under the lock,
        before the attempt stops counting as held.
        """
        with self._changed:
            live = not entry.abandoned
            if live and then is not None:
                then()
            if self._running.get(entry.job.id) is entry:
                del self._running[entry.job.id]
            self._busy -= 1
            if entry.abandoned and entry.started is not None:
                self._hung -= 1
            self._changed.notify_all()
            return live

    def abandon(self, entry: Running, then: Callable[[], None] | None = None) -> bool:
        """Stop tracking a live attempt whose place stays taken until ``end``.

        Returns False, and runs nothing, for an attempt that already ended
        or was abandoned: callers act on a snapshot and must never report a
        second outcome. ``then`` runs under the lock, as in ``end``.
        """
        with self._changed:
            if entry.abandoned or self._running.get(entry.job.id) is not entry:
                return False
            if then is not None:
                then()
            entry.abandoned = True
            if entry.started is not None:
                self._hung += 1
            del self._running[entry.job.id]
            self._changed.notify_all()
            return True

    def snapshot(self) -> list[Running]:
        with self._changed:
            return list(self._running.values())

    def __len__(self) -> int:
        with self._changed:
            return len(self._running)
