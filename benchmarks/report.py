"""The report: one row per figure, beside its raw limit, its target and a verdict.

``build_rows`` turns the measured results into rows; ``markdown`` renders
them, with the raw limits and the drain configurations tried, and ``write``
saves ``latest.md`` and ``latest.json`` (the results, the rows and the run's
settings) in ``benchmarks/results``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Where ``write`` puts the report.
RESULTS = Path(__file__).resolve().parent / "results"

#: Minimum share of the raw limit, by (figure, store key); absent means no
#: target was set and the ratio is shown for information.
RATIO_TARGETS = {
    ("enqueue_single", "sqlite"): 0.90,
    ("enqueue_single", "postgresql"): 0.90,
    ("enqueue_bulk", "postgresql"): 0.40,
    ("drain", "sqlite"): 0.25,
    ("drain", "postgresql"): 0.50,
}

#: Latency limits in ms, (p50, p99), by store key.
LATENCY_TARGETS = {"sqlite": (10.0, 50.0), "postgresql": (2.0, 8.0)}

#: The most a worker's RSS may grow between the two readings, in MB.
RSS_GROWTH_TARGET = 20.0

#: The least share of the empty-table rate the claim keeps among finished jobs.
CLAIM_TARGET = 0.90

_RAW_NAMES = {
    "insert_one": "(a) INSERT, one per transaction",
    "insert_many": "(b) executemany, one transaction",
    "copy": "(c) COPY, one transaction",
    "claim_one": "(d) claim + complete, 1 per transaction",
    "claim_batch": "(e) claim + complete, batches",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the main table."""

    store: str
    measure: str
    conveyor: str
    raw: str
    ratio: float | None
    target: str
    met: bool | None


def _rate(value: float) -> str:
    return f"{value:,.0f} jobs/s"


def _setup(processes: int, threads: int, prefetch: int) -> str:
    """A worker configuration as the tables show it: ``1x16 threads +256``."""
    return f"{processes}x{threads} threads +{prefetch}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "—"}[met]


def build_rows(stores: dict[str, Any]) -> list[Row]:
    """The main table's rows, store by store, in a fixed order."""
    rows: list[Row] = []
    for key, found in stores.items():
        if "skipped" in found:
            rows.append(
                Row(found["label"], "skipped", found["skipped"], "", None, "", None)
            )
            continue
        for build in _BUILDERS:
            rows.extend(build(key, found))
        for step, error in found.get("errors", {}).items():
            rows.append(
                Row(found["label"], step, f"failed: {error}", "", None, "", None)
            )
    return rows


def _ratio_row(
    key: str, found: dict[str, Any], figure: str, measure: str, raw_key: str
) -> Row:
    value = found[figure] if figure != "drain" else found["drain"]["jobs_per_s"]
    raw = found.get("raw", {}).get(raw_key)
    ratio = None if raw is None else value / raw
    share = RATIO_TARGETS.get((figure, key))
    return Row(
        found["label"],
        measure,
        _rate(value),
        "n/a" if raw is None else f"{_rate(raw)} {_RAW_NAMES[raw_key][:3]}",
        ratio,
        f"≥ {share:.0%} of raw" if share is not None else "—",
        None if share is None or ratio is None else ratio >= share,
    )


def _enqueue_rows(key: str, found: dict[str, Any]) -> list[Row]:
    rows = []
    if "enqueue_single" in found:
        measure = "enqueue, 1 job per call"
        rows.append(_ratio_row(key, found, "enqueue_single", measure, "insert_one"))
    if "enqueue_bulk" in found:
        bulk_raw = "copy" if key == "postgresql" else "insert_many"
        measure = f"enqueue_many, {found['bulk_jobs']:,} jobs"
        rows.append(_ratio_row(key, found, "enqueue_bulk", measure, bulk_raw))
    return rows


def _drain_rows(key: str, found: dict[str, Any]) -> list[Row]:
    rows = []
    drain = found.get("drain")
    if drain:
        setup = _setup(drain["processes"], drain["concurrency"], drain["prefetch"])
        measure = f"drain {drain['jobs']:,} no-op jobs ({setup} prefetch)"
        rows.append(_ratio_row(key, found, "drain", measure, "claim_batch"))

    sleepers = found.get("drain_sleep")
    if sleepers:
        ideal = sleepers["ideal_jobs_per_s"]
        rows.append(
            Row(
                found["label"],
                f"drain {sleepers['jobs']:,} jobs of 10 ms "
                f"({_setup(1, sleepers['concurrency'], 0)} prefetch)",
                _rate(sleepers["jobs_per_s"]),
                f"{_rate(ideal)} ideal",
                sleepers["jobs_per_s"] / ideal,
                "—",
                None,
            )
        )
    return rows


def _latency_rows(key: str, found: dict[str, Any]) -> list[Row]:
    latency = found.get("latency")
    if not latency:
        return []
    p50, p99 = LATENCY_TARGETS[key.split("-")[0]]
    shown = " / ".join(
        f"{latency[name]:.1f}" for name in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
    )
    return [
        Row(
            found["label"],
            f"enqueue→start p50/p95/p99/max, {latency['jobs']} jobs",
            f"{shown} ms",
            "",
            None,
            f"p50 ≤ {p50:g} ms, p99 ≤ {p99:g} ms",
            latency["p50_ms"] <= p50 and latency["p99_ms"] <= p99,
        )
    ]


def _memory_rows(key: str, found: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ("memory", "memory_best"):
        memory = found.get(name)
        if not memory:
            continue
        setup = _setup(1, memory["concurrency"], memory.get("prefetch", 0))
        rows.append(
            Row(
                found["label"],
                f"worker RSS after {memory['first']:,} → {memory['jobs']:,} jobs "
                f"({setup} prefetch)",
                f"{memory['rss_first_mb']:.1f} → {memory['rss_half_mb']:.1f} → "
                f"{memory['rss_last_mb']:.1f} MB ({memory['growth_mb']:+.1f}; "
                f"2nd half {memory['growth_second_half_mb']:+.1f})",
                "",
                None,
                f"growth ≤ {RSS_GROWTH_TARGET:g} MB",
                memory["growth_mb"] <= RSS_GROWTH_TARGET,
            )
        )
    return rows


def _claim_rows(key: str, found: dict[str, Any]) -> list[Row]:
    claim = found.get("claim")
    if not claim:
        return []
    return [
        Row(
            found["label"],
            f"claim+finish among {claim['finished_rows']:,} finished jobs",
            _rate(claim["full_jobs_per_s"]),
            f"{_rate(claim['empty_jobs_per_s'])} empty table",
            claim["ratio"],
            f"≥ {CLAIM_TARGET:.0%} of empty",
            claim["ratio"] >= CLAIM_TARGET,
        )
    ]


_BUILDERS: list[Callable[[str, dict[str, Any]], list[Row]]] = [
    _enqueue_rows,
    _drain_rows,
    _latency_rows,
    _memory_rows,
    _claim_rows,
]


# -- rendering -------------------------------------------------------------------


def _table(headers: list[str], lines: list[list[str]]) -> str:
    if not lines:
        return "Nothing measured."
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def main_table(rows: list[Row]) -> str:
    """The main table alone, as printed at the end of a run."""
    return _table(
        ["Store", "Measure", "Conveyor", "Raw / reference", "Ratio", "Target", "Met"],
        [
            [
                row.store,
                row.measure,
                row.conveyor,
                row.raw,
                "" if row.ratio is None else f"{row.ratio:.0%}",
                row.target,
                _verdict(row.met) if row.target else "",
            ]
            for row in rows
        ],
    )


def _raw_table(stores: dict[str, Any]) -> str:
    keys = [key for key, found in stores.items() if "raw" in found]
    lines = [
        [name, *[_raw_cell(stores[key]["raw"], figure) for key in keys]]
        for figure, name in _RAW_NAMES.items()
    ]
    return _table(["Raw limit", *[stores[key]["label"] for key in keys]], lines)


def _raw_cell(raw: dict[str, float], figure: str) -> str:
    return _rate(raw[figure]) if figure in raw else "n/a"


def _drain_table(stores: dict[str, Any]) -> str:
    lines = []
    for found in stores.values():
        for tried in found.get("drain_configs", []):
            lines.append(
                [
                    found["label"],
                    f"{tried['processes']}x{tried['concurrency']}",
                    f"{tried.get('prefetch', 0)}",
                    _rate(tried["jobs_per_s"]),
                    f"{tried['seconds']:.2f} s",
                    f"{tried['first_done_s']:.2f} s",
                    f"{tried['last_done_s']:.2f} s",
                    f"{tried.get('claimed_per_txn', 0):.0f}",
                    f"{tried.get('succeeded_per_txn', 0):.0f}",
                ]
            )
    headers = [
        "Store",
        "processes x threads",
        "prefetch",
        "drain rate",
        "total",
        "1st job done",
        "last job done",
        "jobs/claim txn",
        "jobs/finish txn",
    ]
    return _table(headers, lines)


def markdown(results: dict[str, Any], rows: list[Row]) -> str:
    """The whole report as markdown."""
    meta = results["meta"]
    header = [
        "# Conveyor benchmarks",
        "",
        f"Run {meta['finished_at']} on {meta['cpus']} CPUs, Python "
        f"{meta['python']}, SQLite {meta['sqlite']}, PostgreSQL "
        f"{meta.get('postgresql', 'not measured')}; mode {meta['mode']}, "
        f"{meta['seconds']:.0f} s in all. Git {meta['git']}. Load average "
        f"{meta['load_average_start'][0]:.1f} at the start, "
        f"{meta['load_average_end'][0]:.1f} at the end.",
        "",
    ]
    sections = [
        main_table(rows),
        f"## Raw limits (plain SQL, one Python process, median of {meta['repeats']})",
        _raw_table(results["stores"]),
        "## Drain configurations tried (the best is in the main table)",
        _drain_table(results["stores"]),
        "## How these were measured",
        "\n".join(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(header) + "\n" + "\n\n".join(sections) + "\n"


def write(results: dict[str, Any], rows: list[Row]) -> tuple[Path, Path]:
    """Save ``latest.md`` and ``latest.json``; return their paths."""
    RESULTS.mkdir(exist_ok=True)
    md_path = RESULTS / "latest.md"
    json_path = RESULTS / "latest.json"
    md_path.write_text(markdown(results, rows), encoding="utf-8")
    document = {**results, "rows": [asdict(row) for row in rows]}
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return md_path, json_path
