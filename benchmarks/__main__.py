"""``python -m benchmarks``: measure every store, write and print the report.

Options: ``--quick`` for a smoke run of about a minute with small counts,
``--store sqlite|postgresql|all`` to measure one store or both. PostgreSQL
is reached at ``CONVEYOR_BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); when it cannot be reached,
its half is skipped with a line saying why.

A step that fails is reported as failed and the run goes on with the next;
every worker process and every scratch database is removed however the run
ends (SIGTERM included).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from . import conveyor_bench as bench
from . import raw, report
from .bench_tasks import noop
from .sizes import FULL, QUICK, Sizes
from .targets import (
    PostgresTarget,
    SQLiteTarget,
    Target,
    pg_unreachable,
    pg_url,
    pg_version,
    scratch_directory,
)
from .workers import ROOT

NOTES = [
    "Every figure runs on a fresh database: a new SQLite file (WAL) or a new "
    "PostgreSQL schema `conveyor_bench_<hex>`, dropped afterwards.",
    "Raw limits use a minimal `raw_jobs` table with the same partial claim "
    "index and no attempts or events; a claim and its completion commit "
    "separately, as in any queue whose jobs run in between. PostgreSQL raw "
    "figures use autocommit and prepared statements.",
    "Enqueue: median of the repeats, connection opened before timing. Bulk is "
    "compared with COPY on PostgreSQL and executemany on SQLite.",
    "Drain: jobs queued first, then worker processes started with "
    "`conveyor worker --pool thread --log-level WARNING`; the time runs from "
    "starting them to the moment `count_jobs` (polled every 20 ms) shows the "
    "last job succeeded, worker start-up included. Several processesxthreads "
    "configurations are tried and the best is reported (best of noisy runs "
    "flatters slightly). Jobs per claim/finish transaction are read from "
    "`job_events`.",
    "Latency: one idle worker; `time.time()` taken just before each "
    "`enqueue` in the bench process, the job returns `time.time()` when it "
    "starts. The enqueue's own commit is included.",
    "Memory: RSS of one worker process (psutil) once the first jobs are done "
    "and again after the last; jobs are fed in `enqueue_many` batches while "
    "it runs.",
    "Claim speed: finished rows inserted into `jobs` only (attempts and "
    "events left empty), by one INSERT ... SELECT; PostgreSQL then runs "
    "VACUUM ANALYZE, as autovacuum would have. Then queued jobs are claimed "
    "and finished in-process with `store.claim` + `store.finish`.",
    "The machine is shared (2 cores, other test suites running): figures "
    "are noisy, compare ratios rather than absolute rates.",
]


class _Run:
    """Prints progress and collects results and failures of one store."""

    def __init__(self, started: float) -> None:
        self.started = started

    def say(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.1f} s] {text}", flush=True)

    def step(self, found: dict[str, Any], name: str, measure: Callable[[], Any]) -> Any:
        """Run one measurement into ``found[name]``; on failure, record why."""
        began = time.perf_counter()
        try:
            value = measure()
        except Exception as error:
            self.say(f"  {name} FAILED: {error!r}")
            traceback.print_exc(limit=3)
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


def _best_drain(run: _Run, target: Target, found: dict[str, Any], sizes: Sizes) -> None:
    tried = []
    for processes, concurrency in sizes.drain_configs:
        result = run.step(
            found,
            f"drain_{processes}x{concurrency}",
            lambda p=processes, c=concurrency: bench.drain(
                target, sizes.drain_jobs, noop, p, c
            ),
        )
        if result is not None:
            tried.append({"processes": processes, "concurrency": concurrency, **result})
            del found[f"drain_{processes}x{concurrency}"]
    if not tried:
        return

    found["drain_configs"] = tried
    found["drain"] = {
        **max(tried, key=lambda item: item["jobs_per_s"]),
        "jobs": sizes.drain_jobs,
    }


def _measure_store(
    run: _Run, target: Target, sizes: Sizes, *, drain_only: bool
) -> dict[str, Any]:
    found: dict[str, Any] = {"label": target.label}
    run.say(f"{target.label}")

    def raw_limits() -> dict[str, float]:
        with target.fresh() as db:
            return raw.measure(db, sizes)

    run.step(found, "raw", raw_limits)
    _best_drain(run, target, found, sizes)
    if drain_only:
        return found

    found["bulk_jobs"] = sizes.bulk_enqueue
    run.step(found, "enqueue_single", lambda: bench.enqueue_single(target, sizes))
    run.step(found, "enqueue_bulk", lambda: bench.enqueue_bulk(target, sizes))
    sleepers = run.step(
        found, "drain_sleep", lambda: bench.drain_sleepers(target, sizes)
    )
    if sleepers is not None:
        sleepers.update(jobs=sizes.sleep_jobs, concurrency=sizes.sleep_concurrency)
    latency = run.step(found, "latency", lambda: bench.latency(target, sizes))
    if latency is not None:
        latency["jobs"] = sizes.latency_jobs

    threads = found.get("drain", {}).get("concurrency", 10)
    memory = run.step(found, "memory", lambda: bench.memory(target, sizes, threads))
    if memory is not None:
        memory.update(first=sizes.memory_first, concurrency=threads)
    run.step(found, "claim", lambda: bench.claim_speed(target, sizes))
    return found


def _targets(choice: str, directory: Any) -> list[tuple[Target | None, str, bool]]:
    """(target, key, drain_only) for each store chosen; None when unreachable."""
    chosen: list[tuple[Target | None, str, bool]] = []
    if choice in ("sqlite", "all"):
        chosen.append((SQLiteTarget(directory, "full"), "sqlite", False))
        chosen.append((SQLiteTarget(directory, "normal"), "sqlite-normal", True))
    if choice in ("postgresql", "all"):
        problem = pg_unreachable(pg_url())
        if problem is None:
            chosen.append((PostgresTarget(pg_url()), "postgresql", False))
        else:
            print(
                f"PostgreSQL at {_redact(pg_url())} is unreachable ({problem}); "
                "skipping its half. Set CONVEYOR_BENCH_DATABASE_URL to measure it.",
                flush=True,
            )
            chosen.append((None, "postgresql", False))
    return chosen


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (modified)' if dirty else ''}"


def _meta(sizes: Sizes, quick: bool, seconds: float, pg: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "seconds": seconds,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "git": _git(),
        "repeats": sizes.repeats,
        "sizes": {name: getattr(sizes, name) for name in sizes.__dataclass_fields__},
    }
    if pg:
        meta["postgresql"] = pg_version(pg_url())
        meta["postgresql_url"] = _redact(pg_url())
    return meta


def _on_sigterm(number: int, frame: Any) -> None:
    # Unwinds like Ctrl-C, so every worker is stopped and every scratch
    # database dropped by the blocks that made them.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    parser.add_argument(
        "--store", choices=("sqlite", "postgresql", "all"), default="all"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    sizes = QUICK if args.quick else FULL
    run = _Run(time.perf_counter())

    stores: dict[str, Any] = {}
    with scratch_directory() as directory:
        for target, key, drain_only in _targets(args.store, directory):
            if target is None:
                reason = f"unreachable at {_redact(pg_url())}"
                stores[key] = {"label": "PostgreSQL", "skipped": reason}
                continue
            stores[key] = _measure_store(run, target, sizes, drain_only=drain_only)

    measured_pg = "postgresql" in stores and "skipped" not in stores["postgresql"]
    seconds = time.perf_counter() - run.started
    results = {
        "meta": _meta(sizes, args.quick, seconds, measured_pg),
        "stores": stores,
        "notes": NOTES,
    }
    rows = report.build_rows(stores)
    md_path, json_path = report.write(results, rows)

    print()
    print(report.main_table(rows))
    print(f"\nWrote {md_path} and {json_path} in {seconds:.0f} s.")
    failed = any("errors" in found for found in stores.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
