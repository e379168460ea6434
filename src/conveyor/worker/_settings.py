"""Worker settings: every tunable, with its unit and why it has its default."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigurationError

POOLS = ("thread", "process")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker claims, runs and looks after jobs.

    ``lease`` trades rescue speed against tolerance of pauses: a worker that
    stops heartbeating (killed, frozen, cut off from the database) keeps its
    jobs for up to ``lease`` seconds before any other worker rescues them;
    a worker paused longer than that loses them, and its late results are
    refused.
    """

    queues: tuple[str, ...] | None = None  # None serves every queue
    concurrency: int = 10  # jobs run at once (threads or child processes)
    # Jobs claimed ahead of a free slot, so that short jobs are claimed in
    # large batches. They wait in this worker, unseen by others, so keep it
    # 0 when jobs are long and several workers share a queue.
    prefetch: int = 0
    pool: str = "thread"
    lease: float = 30.0  # seconds a claim holds a job without a heartbeat
    heartbeat_interval: float = 5.0  # seconds between lease renewals
    rescue_interval: float = 10.0  # seconds between looks for lapsed leases
    poll_interval: float = 1.0  # seconds between claims when nothing wakes us;
    # also the most a job due later (a retry, a delayed job) waits past due
    grace: float = 30.0  # seconds running jobs get to finish at shutdown
    finish_batch: int = 500  # most outcomes written in one transaction
    dead_after: float = 60.0  # seconds without heartbeat before a worker is dead
    # Final jobs are deleted this many seconds after they finished; None
    # keeps them for ever (``--prune-after 0`` on the command line). A week
    # keeps recent history readable without letting the table grow for ever.
    prune_after: float | None = 7 * 24 * 3600.0
    prune_interval: float = 60.0  # seconds between pruning sweeps
    prune_batch: int = 1000  # jobs deleted per transaction

    def __post_init__(self) -> None:
        _positive("concurrency", self.concurrency, integer=True)
        for name in (
            "lease",
            "heartbeat_interval",
            "rescue_interval",
            "poll_interval",
            "prune_interval",
        ):
            _positive(name, getattr(self, name))
        _positive("prune_batch", self.prune_batch, integer=True)
        _positive("finish_batch", self.finish_batch, integer=True)
        _positive("dead_after", self.dead_after)
        if not isinstance(self.prefetch, int) or self.prefetch < 0:
            _refuse("prefetch", self.prefetch, "a whole number of 0 or more")
        if self.prune_after is not None and self.prune_after < 0:
            _refuse("prune_after", self.prune_after, "seconds >= 0, or None")
        if self.grace < 0:
            _refuse("grace", self.grace, "a number of seconds >= 0")
        if self.pool not in POOLS:
            _refuse("pool", self.pool, "'thread' or 'process'")
        if self.heartbeat_interval >= self.lease:
            _refuse(
                "heartbeat_interval",
                self.heartbeat_interval,
                f"fewer seconds than the lease ({self.lease})",
            )
        if self.queues is not None and not all(self.queues):
            _refuse("queues", self.queues, "non-empty queue names")


def _positive(name: str, value: float, *, integer: bool = False) -> None:
    if isinstance(value, bool) or (integer and not isinstance(value, int)):
        _refuse(name, value, "a whole number above 0")
    if not value > 0:
        _refuse(name, value, "a number above 0")


def _refuse(name: str, value: object, allowed: str) -> None:
    raise ConfigurationError(f"worker {name}={value!r} is not allowed; use {allowed}")
