"""Conveyor's benchmark suite: ``make bench`` (``python -m benchmarks``).

Each Conveyor figure is measured beside the raw limit of its store (plain
SQL from one Python process, no Conveyor code) and reported as a ratio.
``__main__`` runs everything and writes ``results/latest.md`` and
``results/latest.json``; ``raw`` measures the limits, ``conveyor_bench``
the library, ``workers`` starts and ends worker processes, ``targets``
makes a fresh database for each measurement, and ``report`` renders.
"""
