"""Example tasks: what ``make run`` runs, and a template for your own.

Run them with ``conveyor run --app examples.tasks``, after enqueueing a few
with ``python -m examples.demo``.
"""

from __future__ import annotations

import asyncio
import random
import time

from conveyor import Conveyor, Exponential, Fixed, current_job

app = Conveyor()


@app.task(queue="default")
def add(a: int, b: int) -> int:
    """Succeeds at once."""
    return a + b


@app.task(max_attempts=4, backoff=Exponential(base=0.5, factor=2, cap=5))
def flaky_fetch(url: str, fail_until: int = 3) -> str:
    """Fails on its first attempts, then succeeds: shows retries with back-off."""
    attempt = current_job().attempt
    if attempt < fail_until:
        raise ConnectionError(f"{url} did not answer (attempt {attempt})")
    return f"fetched {url} on attempt {attempt}"


@app.task(max_attempts=2, backoff=Fixed(1), retry_on=(ConnectionError,))
def parse_report(text: str) -> int:
    """Raises ValueError, which it does not retry: fails at once."""
    return int(text)


@app.task(timeout=2, max_attempts=2, backoff=Fixed(0.5))
def slow_export(seconds: float) -> str:
    """Sleeps longer than its timeout: timed out, retried, then failed."""
    time.sleep(seconds)
    return "exported"


@app.task(priority=5)
async def send_email(to: str, subject: str) -> dict[str, str]:
    """An ``async def`` task."""
    await asyncio.sleep(random.uniform(0.01, 0.05))
    return {"to": to, "subject": subject, "status": "sent"}
