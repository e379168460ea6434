"""The job state machine: every move allowed or refused, written out in full."""

from __future__ import annotations

import itertools

import pytest

from conveyor import JobState
from conveyor.states import FINAL_STATES, can_transition, sources_of

W, Q, H, R = JobState.WAITING, JobState.QUEUED, JobState.HELD, JobState.RUNNING
S, F, C = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED

#: Every allowed move, stated independently of ``conveyor.states``.
ALLOWED = {
    (W, Q), (W, H), (W, C),
    (Q, R), (Q, H), (Q, C),
    (H, Q), (H, C),
    (R, S), (R, F), (R, C), (R, Q),
    (S, Q), (F, Q), (C, Q),
}  # fmt: skip

PAIRS = [
    pytest.param(current, target, id=f"{current}->{target}")
    for current, target in itertools.product(JobState, repeat=2)
]


def test_the_states_are_exactly_these_values_in_this_order() -> None:
    assert [state.value for state in JobState] == [
        "waiting",
        "queued",
        "held",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_can_transition_allows_exactly_the_listed_moves(
    current: JobState, target: JobState
) -> None:
    assert can_transition(current, target) is ((current, target) in ALLOWED)


def test_no_state_may_move_to_itself() -> None:
    assert [state for state in JobState if can_transition(state, state)] == []


def test_final_states_are_succeeded_failed_and_cancelled() -> None:
    assert set(FINAL_STATES) == {S, F, C}
    assert [state for state in JobState if state.is_final] == [S, F, C]


def test_a_final_state_may_only_move_back_to_queued() -> None:
    for state in FINAL_STATES:
        assert {t for t in JobState if can_transition(state, t)} == {Q}


@pytest.mark.parametrize(
    ("target", "sources"),
    [
        pytest.param(W, set(), id="waiting"),
        pytest.param(Q, {W, H, R, S, F, C}, id="queued"),
        pytest.param(H, {W, Q}, id="held"),
        pytest.param(R, {Q}, id="running"),
        pytest.param(S, {R}, id="succeeded"),
        pytest.param(F, {R}, id="failed"),
        pytest.param(C, {W, Q, H, R}, id="cancelled"),
    ],
)
def test_sources_of_lists_every_state_that_may_move_to_target(
    target: JobState, sources: set[JobState]
) -> None:
    assert sources_of(target) == sources
