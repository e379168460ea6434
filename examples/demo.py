"""Enqueue the demo mix that ``make run`` shows: successes, retries, a failure,
a timeout and a delayed job.

    python -m examples.demo
"""

from __future__ import annotations

from datetime import timedelta

from .tasks import add, app, flaky_fetch, parse_report, send_email, slow_export


def main() -> None:
    """Migrate the database and enqueue one of each kind of job."""
    app.migrate()
    jobs = app.enqueue_many(
        [
            add.call(2, 3),
            add.call(40, 2),
            send_email.call("ada@example.com", subject="Welcome"),
            flaky_fetch.call("https://example.com/feed"),
            parse_report.call("not a number"),
            slow_export.call(5),
        ]
    )
    delayed = add.using(run_after=timedelta(seconds=5)).enqueue(1, 1)

    ids = ", ".join(str(job.id) for job in [*jobs, delayed])
    print(
        f"Enqueued demo jobs {ids} (job {delayed.id} runs in 5 s) in {app.database_url}"
    )


if __name__ == "__main__":
    main()
