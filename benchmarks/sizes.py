"""How much work each benchmark does: the full run and the ``--quick`` smoke run.

Every count the suite uses lives here, with what it counts and why it has
that size. Rates of one-per-transaction work barely depend on the count, so
those counts are kept small; the drains are sized so that worker start-up
stays a small share of the time measured.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    """The counts of one run."""

    repeats: int  # runs per enqueue, raw and claim figure; the median is kept
    single_enqueue: int  # jobs enqueued one per call, one transaction each
    bulk_enqueue: int  # jobs in one enqueue_many call (and one COPY)
    drain_jobs: int  # no-op jobs queued before the worker starts
    # (processes, threads, prefetch) tried; prefetch is ``--prefetch``, the
    # jobs each worker claims ahead of its threads
    drain_configs: tuple[tuple[int, int, int], ...]
    sleep_jobs: int  # 10 ms jobs drained to show that slots run in parallel
    sleep_concurrency: int  # threads for the 10 ms drain (the CLI default)
    latency_jobs: int  # jobs enqueued one at a time onto an idle worker
    latency_spacing: float  # seconds between those enqueues
    latency_concurrency: int  # threads of the idle worker (the CLI default)
    memory_first: int  # jobs run before the first RSS reading
    memory_total: int  # jobs run before the last RSS reading (one more at half)
    memory_batch: int  # jobs per enqueue_many while the memory worker runs
    memory_concurrency: int  # threads of the memory worker (the CLI default,
    # no prefetch); it is measured again with the best drain configuration's
    # threads and prefetch
    finished_rows: int  # finished jobs inserted before the claim comparison
    claim_jobs: int  # queued jobs claimed and finished in that comparison
    claim_batch: int  # jobs per store.claim call there (and in raw (e))
    raw_single: int  # raw (a): rows inserted one per transaction
    raw_claim_one: int  # raw (d): jobs claimed and completed one at a time
    raw_claim_batch: int  # raw (e): jobs claimed and completed in batches


FULL = Sizes(
    repeats=3,
    single_enqueue=2_000,
    bulk_enqueue=10_000,
    drain_jobs=20_000,
    # 1x32+512, 1x64+256, 1x8+512 and 2x16+256 were tried when choosing
    # these (2 runs a store) and never came first
    drain_configs=(
        (1, 10, 0),  # the CLI default, for reference
        (1, 64, 0),  # usually first on PostgreSQL
        (1, 256, 0),
        (1, 16, 256),
        (1, 16, 1024),  # usually first on SQLite
    ),
    sleep_jobs=2_000,
    sleep_concurrency=10,
    latency_jobs=200,
    latency_spacing=0.020,
    latency_concurrency=10,
    memory_first=1_000,
    memory_total=100_000,
    memory_batch=10_000,
    memory_concurrency=10,
    finished_rows=1_000_000,
    claim_jobs=5_000,
    claim_batch=100,
    raw_single=2_000,
    raw_claim_one=1_000,
    raw_claim_batch=10_000,
)

QUICK = Sizes(
    repeats=1,
    single_enqueue=300,
    bulk_enqueue=2_000,
    drain_jobs=3_000,
    drain_configs=((1, 10, 0), (1, 16, 256)),
    sleep_jobs=300,
    sleep_concurrency=10,
    latency_jobs=40,
    latency_spacing=0.020,
    latency_concurrency=10,
    memory_first=1_000,
    memory_total=6_000,
    memory_batch=2_500,
    memory_concurrency=10,
    finished_rows=50_000,
    claim_jobs=1_000,
    claim_batch=100,
    raw_single=300,
    raw_claim_one=300,
    raw_claim_batch=2_000,
)
