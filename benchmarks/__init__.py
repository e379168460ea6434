"""Conveyor's benchmark suite: ``make bench`` (``python -m benchmarks``).

Each Conveyor figure is measured beside the raw limit of its store (plain
SQL from one Python process, no Conveyor code) and reported as a ratio.
``__main__`` parses the options and writes the report; ``plan`` decides
what runs on each store and in which order; ``raw`` measures the limits and
``conveyor_bench`` the library; ``workers`` starts and always ends worker
processes; ``tables`` watches and seeds Conveyor's tables with raw SQL;
``targets`` makes a fresh database for each measurement; ``sizes`` holds
every count; ``report`` renders ``results/latest.md`` and
``results/latest.json``.
"""
