"""The ``conveyor`` command: run workers, migrate, enqueue and inspect jobs.

Every command takes ``--database-url`` (or ``CONVEYOR_DATABASE_URL``) and
``--app`` (or ``CONVEYOR_APP``). A usage mistake exits with status 2 and one
line naming it; a failure at run time exits with status 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import click

from . import _logconfig
from ._json import decode
from .app import Conveyor
from .errors import (
    ConfigurationError,
    ConveyorError,
    SerializationError,
    UnknownTaskError,
)
from .loading import load_app
from .records import JobFilter, JobRecord
from .states import JobState
from .worker import POOLS, Worker, WorkerSettings

F = TypeVar("F", bound=Callable[..., Any])


class UsageProblem(click.UsageError):
    """A usage mistake found after parsing (bad JSON, unknown task)."""


def _common(command: F) -> F:
    command = click.option(
        "--app",
        "app_spec",
        envvar="CONVEYOR_APP",
        help="Module defining the tasks, as module or module:attribute.",
    )(command)
    return click.option(
        "--database-url",
        envvar="CONVEYOR_DATABASE_URL",
        help="sqlite:///path.db or postgresql://... (default sqlite:///conveyor.db).",
    )(command)


def _app(app_spec: str | None, database_url: str | None) -> Conveyor:
    try:
        app = load_app(app_spec) if app_spec else Conveyor()
        if database_url:
            app.use_database(database_url)
        # Opening the store reads the URL, so a URL Conveyor cannot use is
        # reported as the usage mistake it is; a database that cannot be
        # reached fails later, at run time.
        app.store  # noqa: B018
    except ConfigurationError as error:
        raise UsageProblem(str(error))
    return app


@click.group()
@click.version_option(package_name="conveyor")
def main_group() -> None:
    """Conveyor: a durable task queue for Python on SQLite or PostgreSQL."""


# -- running ------------------------------------------------------------------


def _worker_options(command: F) -> F:
    options = [
        click.option(
            "--queues", help="Comma-separated queues to serve (default: all)."
        ),
        click.option(
            "--concurrency", type=click.IntRange(min=1), default=10, show_default=True
        ),
        click.option(
            "--prefetch",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Jobs claimed ahead of a free slot (for many short jobs).",
        ),
        click.option(
            "--pool", type=click.Choice(POOLS), default="thread", show_default=True
        ),
        click.option(
            "--grace",
            type=click.FloatRange(min=0),
            default=30.0,
            show_default=True,
            help="Seconds running jobs get to finish at shutdown.",
        ),
        click.option(
            "--lease",
            type=click.FloatRange(min=1),
            default=30.0,
            show_default=True,
            help="Seconds a job stays owned without a heartbeat.",
        ),
        click.option(
            "--prune-after",
            type=click.FloatRange(min=0),
            default=7 * 24 * 3600.0,
            show_default=True,
            help="Seconds to keep final jobs before deleting them; 0 keeps them.",
        ),
        click.option(
            "--log-format", type=click.Choice(_logconfig.LOG_FORMATS), default="text"
        ),
        click.option(
            "--log-level",
            type=click.Choice(
                ["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False
            ),
            default="INFO",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_worker(app: Conveyor, app_spec: str | None, **options: Any) -> None:
    _logconfig.configure(options["log_format"], options["log_level"])
    queues = options["queues"]
    try:
        settings = WorkerSettings(
            queues=tuple(q.strip() for q in queues.split(",")) if queues else None,
            concurrency=options["concurrency"],
            prefetch=options["prefetch"],
            pool=options["pool"],
            grace=options["grace"],
            lease=options["lease"],
            heartbeat_interval=min(5.0, options["lease"] / 3),
            rescue_interval=min(10.0, options["lease"] / 2),
            dead_after=max(2 * options["lease"], 10.0),
            prune_after=options["prune_after"] or None,
        )
    except ConfigurationError as error:
        raise UsageProblem(str(error))
    if settings.pool == "process" and not app_spec:
        raise UsageProblem(
            "--pool process needs --app, which its child processes import"
        )

    Worker(app, settings, app_spec=app_spec).run()


@main_group.command()
@_common
@_worker_options
def worker(app_spec: str | None, database_url: str | None, **options: Any) -> None:
    """Run a worker until SIGTERM or Ctrl-C."""
    app = _app(app_spec, database_url)
    if app_spec is None:
        raise UsageProblem(
            "worker needs --app (or CONVEYOR_APP) naming the tasks module"
        )
    _run_worker(app, app_spec, **options)


@main_group.command()
@_common
@_worker_options
def run(app_spec: str | None, database_url: str | None, **options: Any) -> None:
    """Migrate the database, then run a worker: the all-in-one for one machine."""
    app = _app(app_spec, database_url)
    if app_spec is None:
        raise UsageProblem("run needs --app (or CONVEYOR_APP) naming the tasks module")
    app.migrate()
    _run_worker(app, app_spec, **options)


@main_group.command()
@_common
def migrate(app_spec: str | None, database_url: str | None) -> None:
    """Create or upgrade the schema. Running it twice is harmless."""
    app = _app(app_spec, database_url)
    applied = app.migrate()
    version = app.store.schema_version()
    if applied:
        click.echo(
            f"Applied migrations {', '.join(map(str, applied))}; "
            f"schema at version {version}."
        )
    else:
        click.echo(f"Schema already at version {version}; nothing to apply.")


# -- enqueueing -----------------------------------------------------------------


def _json_option(text: str, name: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageProblem(f"{name} is not valid JSON ({error.msg}): {text!r}")
    if not isinstance(value, kind):
        expected = "a JSON list" if kind is list else "a JSON object"
        raise UsageProblem(f"{name} must be {expected}, got {text!r}")
    return value


@main_group.command()
@click.argument("task")
@click.option(
    "--args", "args_json", default="[]", help="Positional arguments as a JSON list."
)
@click.option(
    "--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object."
)
@click.option("--queue", help="Queue (default: the task's).")
@click.option("--priority", type=click.IntRange(-1000, 1000), help="Higher runs first.")
@click.option(
    "--delay", type=click.FloatRange(min=0), help="Seconds to wait before running."
)
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@_common
def enqueue(
    task: str,
    args_json: str,
    kwargs_json: str,
    queue: str | None,
    priority: int | None,
    delay: float | None,
    as_json: bool,
    app_spec: str | None,
    database_url: str | None,
) -> None:
    """Enqueue a job of TASK (its registered name)."""
    args = _json_option(args_json, "--args", list)
    kwargs = _json_option(kwargs_json, "--kwargs", dict)
    if app_spec is None:
        raise UsageProblem(
            "enqueue needs --app (or CONVEYOR_APP) to check the task name"
        )
    app = _app(app_spec, database_url)

    try:
        chosen = app.get_task(task).using(
            queue=queue,
            priority=priority,
            run_after=None if delay is None else timedelta(seconds=delay),
        )
        job = app.enqueue_many([chosen.call(*args, **kwargs)], actor="cli")[0]
        job.refresh()
    except (UnknownTaskError, SerializationError, ConfigurationError) as error:
        raise UsageProblem(str(error))

    if as_json:
        click.echo(json.dumps(_job_dict(job.record)))
    else:
        click.echo(f"Enqueued job {job.id} ({task}) on queue {job.record.queue}.")


# -- reading --------------------------------------------------------------------


@main_group.group()
def jobs() -> None:
    """Read jobs."""


@jobs.command("list")
@click.option("--state", type=click.Choice([s.value for s in JobState]))
@click.option("--queue")
@click.option("--task")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_common
def jobs_list(
    state: str | None,
    queue: str | None,
    task: str | None,
    limit: int,
    as_json: bool,
    app_spec: str | None,
    database_url: str | None,
) -> None:
    """List jobs, newest first."""
    app = _app(app_spec, database_url)
    where = JobFilter(JobState(state) if state else None, queue, task, limit=limit)
    records = app.store.list_jobs(where)

    if as_json:
        click.echo(json.dumps([_job_dict(record) for record in records]))
        return
    _table(
        ["ID", "STATE", "TASK", "QUEUE", "PRI", "ATTEMPTS", "RUN AT"],
        [
            [
                str(r.id),
                r.state.value,
                r.task,
                r.queue,
                str(r.priority),
                f"{r.attempts}/{r.max_attempts}",
                r.run_at.isoformat(timespec="seconds"),
            ]
            for r in records
        ],
    )


@jobs.command("show")
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@_common
def jobs_show(
    job_id: int, as_json: bool, app_spec: str | None, database_url: str | None
) -> None:
    """Show one job with its attempts and its history."""
    app = _app(app_spec, database_url)
    record = app.store.get_job(job_id)
    if record is None:
        raise UsageProblem(f"no job has id {job_id}")
    attempts = app.store.list_attempts(job_id)
    events = app.store.list_events(job_id)

    if as_json:
        found = _job_dict(record)
        found["attempt_history"] = [_plain(asdict(a)) for a in attempts]
        found["events"] = [_plain(asdict(e)) for e in events]
        click.echo(json.dumps(found))
        return
    _print_job(record, attempts, events)


@main_group.group()
def workers() -> None:
    """Read the worker registry."""


@workers.command("list")
@click.option("--json", "as_json", is_flag=True)
@_common
def workers_list(as_json: bool, app_spec: str | None, database_url: str | None) -> None:
    """List workers, most recently started first."""
    app = _app(app_spec, database_url)
    found = app.store.list_workers()
    if as_json:
        click.echo(json.dumps([_plain(asdict(w)) for w in found]))
        return
    _table(
        ["ID", "STATE", "QUEUES", "POOL", "CONC", "RUNNING", "LAST HEARTBEAT"],
        [
            [
                w.id,
                w.state,
                ",".join(w.queues) or "all",
                w.pool,
                str(w.concurrency),
                str(w.running_jobs),
                w.heartbeat_at.isoformat(timespec="seconds"),
            ]
            for w in found
        ],
    )


# -- output ---------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, JobState):
        return value.value
    return value


def _job_dict(record: JobRecord) -> dict[str, Any]:
    found: dict[str, Any] = _plain(asdict(record))
    found["args"] = decode(found.pop("args_json"))
    found["kwargs"] = decode(found.pop("kwargs_json"))
    found["result"] = decode(found.pop("result_json"))
    return found


def _table(headers: list[str], rows: list[list[str]]) -> None:
    if not rows:
        click.echo("No rows.")
        return
    widths = [
        max(len(cell) for cell in column)
        for column in zip(headers, *rows, strict=False)
    ]
    for row in [headers, *rows]:
        click.echo(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _print_job(record: JobRecord, attempts: list[Any], events: list[Any]) -> None:
    for key, value in _job_dict(record).items():
        if value is not None and key != "traceback":
            click.echo(f"{key:>17}: {value}")
    if record.traceback:
        click.echo(f"\n{record.traceback}")
    click.echo("\nAttempts:")
    for a in attempts:
        end = a.outcome.value if a.outcome else "running"
        error = f" {a.error_type}: {a.error_message}" if a.error_type else ""
        click.echo(
            f"  #{a.attempt} {a.started_at.isoformat()} {a.worker_id} {end}{error}"
        )
    click.echo("\nHistory:")
    for e in events:
        source = e.from_state.value if e.from_state else "-"
        click.echo(
            f"  {e.at.isoformat()} {source} -> {e.to_state.value} "
            f"({e.reason}, by {e.actor})"
        )


# -- entry point ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; exit 2 on a usage mistake, 1 on a failure."""
    try:
        main_group.main(args=argv, prog_name="conveyor", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.UsageError as error:
        click.echo(f"conveyor: error: {error.format_message()}", err=True)
        sys.exit(2)
    except ConveyorError as error:
        click.echo(f"conveyor: failed: {error}", err=True)
        sys.exit(1)
    sys.exit(0)
