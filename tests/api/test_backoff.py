"""Back-off policies: exact delays with an injected random source, and the
retry time a drain stores, with an injected clock."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import ConfigurationError, Conveyor, DrainReport, Exponential, Fixed
from tests.api import FixedRandom, migrated_app
from tests.conftest import Clock


class NoRandom:
    """A random source that fails the test when a policy draws from it."""

    def random(self) -> float:
        raise AssertionError("this policy must not draw a random number")


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock, rng=FixedRandom(0.5))


def test_exponential_without_jitter_multiplies_base_by_factor_up_to_cap() -> None:
    policy = Exponential(base=2, factor=3, cap=100, jitter=0.5)

    delays = [policy(attempt, FixedRandom(0.0)) for attempt in range(1, 7)]

    assert delays == [2.0, 6.0, 18.0, 54.0, 100.0, 100.0]


def test_exponential_jitter_shortens_the_delay_by_jitter_times_random() -> None:
    policy = Exponential(base=2, factor=3, cap=100, jitter=0.5)

    delays = [policy(attempt, FixedRandom(0.5)) for attempt in range(1, 6)]

    assert delays == [1.5, 4.5, 13.5, 40.5, 75.0]


def test_exponential_draws_one_number_per_delay_from_a_seeded_source() -> None:
    policy = Exponential(base=2, factor=3, cap=100, jitter=0.5)
    rng = random.Random(7)

    delays = [policy(attempt, rng) for attempt in (1, 2, 3)]

    # random.Random(7) draws 0.3238..., 0.1508..., 0.6509... on every platform.
    assert delays == [1.6761672351668375, 5.547452478226495, 12.141589742641315]


def test_exponential_defaults_are_one_second_doubling_to_ten_minutes() -> None:
    policy = Exponential()

    assert (policy.base, policy.factor, policy.cap, policy.jitter) == (
        1.0,
        2.0,
        600.0,
        0.25,
    )
    assert [policy(n, FixedRandom(0.0)) for n in (1, 2, 3, 10, 11)] == [
        1.0,
        2.0,
        4.0,
        512.0,
        600.0,
    ]
    assert policy(1, FixedRandom(1.0)) == 0.75


def test_exponential_stays_at_cap_for_huge_attempt_numbers() -> None:
    assert Exponential(cap=30, jitter=0)(10_000, FixedRandom(0.0)) == 30.0


def test_exponential_treats_attempt_zero_like_attempt_one() -> None:
    assert Exponential(base=4, jitter=0)(0, FixedRandom(0.0)) == 4.0


def test_fixed_waits_the_same_seconds_and_draws_nothing() -> None:
    policy = Fixed(5)

    assert [policy(attempt, NoRandom()) for attempt in (1, 2, 50)] == [5.0] * 3


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: Exponential(base=-1),
            "back-off base=-1 is not allowed; use a number of seconds >= 0",
            id="base",
        ),
        pytest.param(
            lambda: Exponential(base=math.nan),
            "back-off base=nan is not allowed; use a number of seconds >= 0",
            id="base-nan",
        ),
        pytest.param(
            lambda: Exponential(base="1"),  # type: ignore[arg-type]
            "back-off base='1' is not allowed; use a number of seconds >= 0",
            id="base-not-a-number",
        ),
        pytest.param(
            lambda: Exponential(factor=0.5),
            "back-off factor=0.5 is not allowed; use a number >= 1",
            id="factor",
        ),
        pytest.param(
            lambda: Exponential(cap=-0.1),
            "back-off cap=-0.1 is not allowed; use a number of seconds >= 0",
            id="cap",
        ),
        pytest.param(
            lambda: Exponential(jitter=1.5),
            "back-off jitter=1.5 is not allowed; use a fraction from 0 to 1",
            id="jitter-high",
        ),
        pytest.param(
            lambda: Exponential(jitter=-0.25),
            "back-off jitter=-0.25 is not allowed; use a fraction from 0 to 1",
            id="jitter-low",
        ),
        pytest.param(
            lambda: Fixed(-5),
            "back-off seconds=-5 is not allowed; use a number >= 0",
            id="fixed-seconds",
        ),
    ],
)
def test_invalid_backoff_parameter_is_refused_by_name(make: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        make()

    assert str(raised.value) == message


def test_retry_is_stored_at_clock_plus_exponential_delay(
    app: Conveyor, clock: Clock
) -> None:
    @app.task(
        name="api.down",
        max_attempts=3,
        backoff=Exponential(base=2, factor=3, cap=100, jitter=0.5),
    )
    def down() -> None:
        raise ConnectionError("down")

    job = down.enqueue()

    assert app.drain() == DrainReport(retried=1)
    assert job.refresh().record.run_at == clock.after(1.5)
    clock.advance(1.5)
    assert app.drain() == DrainReport(retried=1)
    assert job.refresh().record.run_at == clock.after(4.5)


def test_retry_uses_the_apps_seeded_random_source(tmp_path: Path, clock: Clock) -> None:
    policy = Exponential(base=10, factor=2, cap=100, jitter=1)
    expected = policy(1, random.Random(42))
    app = Conveyor(
        f"sqlite:///{tmp_path}/c.db", clock=lambda: clock.now, rng=random.Random(42)
    )
    app.migrate()

    @app.task(name="api.down", backoff=policy)
    def down() -> None:
        raise ConnectionError("down")

    job = down.enqueue()
    app.drain()

    assert job.refresh().record.run_at == clock.now + timedelta(seconds=expected)
    app.close()


def test_callable_policy_gets_the_attempt_number_and_the_apps_rng(
    app: Conveyor, clock: Clock
) -> None:
    seen: list[tuple[int, Any]] = []

    def ten_seconds_per_attempt(attempt: int, rng: Any) -> float:
        seen.append((attempt, rng))
        return 10.0 * attempt

    @app.task(name="api.down", max_attempts=3, backoff=ten_seconds_per_attempt)
    def down() -> None:
        raise ConnectionError("down")

    job = down.enqueue()

    app.drain()
    assert job.refresh().record.run_at == clock.after(10)
    clock.advance(10)
    app.drain()
    assert job.refresh().record.run_at == clock.after(20)
    assert seen == [(1, app.rng), (2, app.rng)]


def test_negative_delay_from_a_callable_policy_retries_at_once(
    app: Conveyor, clock: Clock
) -> None:
    @app.task(name="api.down", max_attempts=2, backoff=lambda attempt, rng: -5.0)
    def down() -> None:
        raise ConnectionError("down")

    job = down.enqueue()

    assert app.drain() == DrainReport(retried=1, failed=1)
    assert job.refresh().attempts == 2
