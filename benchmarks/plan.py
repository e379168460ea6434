"""What is measured on each store, in which order, and how progress is shown.

``measure_store`` runs every figure for one store and returns them as one
dict for ``report``. Each Conveyor figure that has a raw counterpart is
measured in turn with it, repeat by repeat, so a burst of load from other
work on the machine lands on both sides of the ratio. A figure that fails
is recorded with its error and the plan goes on with the next.
"""

from __future__ import annotations

import statistics
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any

from . import conveyor_bench as bench
from .bench_tasks import noop
from .raw import Limits
from .sizes import Sizes
from .targets import Target


class Progress:
    """Prints one line per step, stamped with the seconds since the start."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def say(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f} s] {text}", flush=True)

    def step(self, found: dict[str, Any], name: str, measure: Callable[[], Any]) -> Any:
        """Run one measurement into ``found[name]``; on failure, record why."""
        began = time.perf_counter()
        try:
            value = measure()
        except Exception as error:
            self.say(f"  {name} FAILED: {error!r}")
            traceback.print_exc(limit=4)
            found.setdefault("errors", {})[name] = repr(error)
            return None

        found[name] = value
        self.say(f"  {name}: {_brief(value)} ({time.perf_counter() - began:.1f} s)")
        return value


def _brief(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(
            f"{key}={item:,.1f}" if isinstance(item, float) else f"{key}={item}"
            for key, item in value.items()
        )
    return str(value)


def _interleaved(
    repeats: int, measures: dict[str, Callable[[], float]]
) -> dict[str, float]:
    """Run each measure once per round, ``repeats`` rounds; medians by name."""
    runs: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            runs[name].append(measure())
    return {name: statistics.median(values) for name, values in runs.items()}


def _enqueue_pairs(target: Target, sizes: Sizes) -> dict[str, float]:
    """Enqueue figures beside raw (a) and the store's bulk raw figure."""
    bulk = _paired(target)[1]
    with target.fresh() as db, Limits(db, sizes.claim_batch) as limits:
        return _interleaved(
            sizes.repeats,
            {
                "raw_insert_one": lambda: limits.rate("insert_one", sizes.raw_single),
                "enqueue_single": lambda: bench.enqueue_single(target, sizes),
                f"raw_{bulk}": lambda: limits.rate(bulk, sizes.bulk_enqueue),
                "enqueue_bulk": lambda: bench.enqueue_bulk(target, sizes),
            },
        )


def _raw_rest(
    target: Target, sizes: Sizes, paired: tuple[str, ...]
) -> dict[str, float]:
    """The raw figures not measured beside an enqueue figure."""
    counts = {
        "insert_one": sizes.raw_single,
        "insert_many": sizes.bulk_enqueue,
        "copy": sizes.bulk_enqueue,
        "claim_one": sizes.raw_claim_one,
        "claim_batch": sizes.raw_claim_batch,
    }
    with target.fresh() as db, Limits(db, sizes.claim_batch) as limits:
        return {
            figure: limits.median(figure, counts[figure], sizes.repeats)
            for figure in limits.figures
            if figure not in paired
        }


def _paired(target: Target) -> tuple[str, ...]:
    """The raw figures measured beside the enqueue figures."""
    bulk = "copy" if target.dialect == "postgresql" else "insert_many"
    return ("insert_one", bulk)


def _best_drain(
    progress: Progress, target: Target, found: dict[str, Any], sizes: Sizes
) -> None:
    """Drain with each configuration; keep them all and the best apart."""
    tried = []
    for processes, concurrency, prefetch in sizes.drain_configs:
        name = f"drain_{processes}x{concurrency}+{prefetch}"
        result = progress.step(
            found,
            name,
            partial(
                bench.drain,
                target,
                sizes.drain_jobs,
                noop,
                processes,
                concurrency,
                prefetch,
            ),
        )
        if result is not None:
            tried.append(
                {
                    "processes": processes,
                    "concurrency": concurrency,
                    "prefetch": prefetch,
                    **result,
                }
            )
            del found[name]
    if not tried:
        return

    found["drain_configs"] = tried
    best = max(tried, key=lambda item: item["jobs_per_s"])
    found["drain"] = {**best, "jobs": sizes.drain_jobs}


def measure_store(
    progress: Progress, target: Target, sizes: Sizes, *, drain_only: bool
) -> dict[str, Any]:
    """Every figure for one store (only raw limits and drains if ``drain_only``)."""
    found: dict[str, Any] = {"label": target.label}
    progress.say(target.label)

    paired = () if drain_only else _paired(target)
    progress.step(found, "raw", lambda: _raw_rest(target, sizes, paired))
    _best_drain(progress, target, found, sizes)
    if drain_only:
        return found

    pairs = progress.step(found, "enqueue", lambda: _enqueue_pairs(target, sizes))
    if pairs is not None:
        del found["enqueue"]
        found["enqueue_single"] = pairs.pop("enqueue_single")
        found["enqueue_bulk"] = pairs.pop("enqueue_bulk")
        found["bulk_jobs"] = sizes.bulk_enqueue
        found.setdefault("raw", {}).update(
            {name.removeprefix("raw_"): rate for name, rate in pairs.items()}
        )

    _measure_workers(progress, target, found, sizes)
    progress.step(found, "claim", lambda: bench.claim_speed(target, sizes))
    return found


def _measure_workers(
    progress: Progress, target: Target, found: dict[str, Any], sizes: Sizes
) -> None:
    sleepers = progress.step(
        found, "drain_sleep", lambda: bench.drain_sleepers(target, sizes)
    )
    if sleepers is not None:
        sleepers.update(jobs=sizes.sleep_jobs, concurrency=sizes.sleep_concurrency)

    latency = progress.step(found, "latency", lambda: bench.latency(target, sizes))
    if latency is not None:
        latency.update(jobs=sizes.latency_jobs, concurrency=sizes.latency_concurrency)

    settings = {"memory": (sizes.memory_concurrency, 0)}
    best = found.get("drain")
    if best is not None:
        settings["memory_best"] = (best["concurrency"], best["prefetch"])
    for name, (threads, prefetch) in settings.items():
        memory = progress.step(
            found,
            name,
            partial(bench.memory, target, sizes, threads, prefetch),
        )
        if memory is not None:
            memory.update(
                first=sizes.memory_first,
                jobs=sizes.memory_total,
                concurrency=threads,
                prefetch=prefetch,
            )
