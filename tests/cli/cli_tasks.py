"""Tasks for the CLI tests: ``conveyor ... --app cli_tasks`` imports this.

Names are given explicitly so they do not depend on how the module is
imported.
"""

from __future__ import annotations

from conveyor import Conveyor

app = Conveyor()


@app.task(name="cli.add")
def add(a: int, b: int) -> int:
    """Succeeds at once."""
    return a + b


@app.task(name="cli.greet", queue="greetings")
def greet(name: str, punctuation: str = "!") -> str:
    """Takes a keyword argument."""
    return f"Hello, {name}{punctuation}"


@app.task(name="cli.fail", max_attempts=1)
def fail() -> None:
    """Fails for good on its only attempt."""
    raise ValueError("cli.fail always fails")
