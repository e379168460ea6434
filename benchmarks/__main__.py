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
from datetime import UTC, datetime
from typing import Any

from . import report
from .plan import Progress, measure_store
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
    "Raw limits use a minimal `raw_jobs` table with the same columns and "
    "partial claim index, no other index, no attempts or events; a claim and "
    "its completion commit separately, as in any queue whose jobs run in "
    "between. PostgreSQL raw figures use autocommit and prepared statements. "
    "Medians of the repeats.",
    "Enqueue: each repeat runs raw (a), `task.enqueue()` in a loop, the bulk "
    "raw figure and one `enqueue_many`, in turn, so load bursts hit both "
    "sides of a ratio; connections are opened before timing. Bulk is "
    "compared with COPY on PostgreSQL and executemany on SQLite.",
    "Drain: jobs queued first, then worker processes started with "
    "`conveyor worker --concurrency T --prefetch F --pool thread "
    "--log-level WARNING`; the time runs from "
    "starting them until a poll (every 20 ms) finds no job queued or "
    "running, worker start-up included (`count_jobs` then checks that all "
    "succeeded; it is too costly to poll on a 2-core machine). Several "
    "processes x threads + prefetch configurations are tried, once each, and "
    "the best is reported (the best of noisy runs flatters slightly); 1x10 "
    "+0 is the CLI default, kept for reference. Jobs per claim and finish "
    "transaction are read from `job_events`.",
    "Latency: one idle worker; `time.time()` taken just before each "
    "`enqueue` in the bench process, the job returns `time.time()` when it "
    "starts. The enqueue's own commit is included.",
    "Memory: RSS of one worker process (psutil) once the first 1,000 jobs "
    "are done, at half way and after the last, each read when the queue is "
    "empty; jobs are fed in `enqueue_many` batches while it runs. Measured "
    "with the CLI's defaults (10 threads, no prefetch) and with the best "
    "drain configuration's threads and prefetch.",
    "Claim speed: finished rows inserted into `jobs` only (attempts and "
    "events left empty) by one INSERT ... SELECT; PostgreSQL then runs "
    "VACUUM ANALYZE, as autovacuum would have. Queued jobs are then claimed "
    "and finished in-process with `store.claim` + `store.finish`, on the "
    "full and the empty database in turn.",
    "The machine has 2 cores, shared by the bench process, the workers and "
    "PostgreSQL: figures are noisy (a drain varies by some 20% from run to "
    "run); compare ratios rather than absolute rates.",
]


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
        "load_average_end": os.getloadavg(),
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
    try:
        return _run(args.quick, args.store)
    except KeyboardInterrupt:
        print(
            "\nInterrupted: workers stopped and scratch databases removed; "
            "no report written.",
            file=sys.stderr,
        )
        return 130


def _run(quick: bool, choice: str) -> int:
    sizes = QUICK if quick else FULL
    progress = Progress()
    load_at_start = os.getloadavg()

    stores: dict[str, Any] = {}
    with scratch_directory() as directory:
        for target, key, drain_only in _targets(choice, directory):
            if target is None:
                reason = f"unreachable at {_redact(pg_url())}"
                stores[key] = {"label": "PostgreSQL", "skipped": reason}
                continue
            stores[key] = measure_store(progress, target, sizes, drain_only=drain_only)

    measured_pg = "postgresql" in stores and "skipped" not in stores["postgresql"]
    seconds = time.perf_counter() - progress.started
    results = {
        "meta": {
            **_meta(sizes, quick, seconds, measured_pg),
            "load_average_start": load_at_start,
        },
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
