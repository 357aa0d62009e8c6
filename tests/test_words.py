"""The typed words: every status, kind and verb carries its meaning, and the groups of rollout
states are the ones every room relies on (written once, on State)."""

from __future__ import annotations

import pytest

from warroom.core.action_kinds import ActionKind
from warroom.core.exit_codes import Exit
from warroom.core.guardrail_actions import GuardrailAction
from warroom.core.snapshot import State
from warroom.core.statuses import ExposureStatus, GuardrailStatus, PaneStatus, RunbookStepStatus
from warroom.core.verbs import Verb

WORDS = (State, GuardrailStatus, PaneStatus, ExposureStatus, RunbookStepStatus, ActionKind, GuardrailAction, Verb, Exit)


@pytest.mark.parametrize("words", WORDS, ids=lambda w: w.__name__)
def test_every_word_says_what_it_means_and_reads_back_from_its_stored_text(words):
    for word in words:
        assert word.meaning.strip(), f"{words.__name__}.{word.name} has no meaning"
        assert words(word.value) is word and word == word.value


P, R, PA, C, RB, RD = State.PENDING, State.RUNNING, State.PAUSED, State.COMPLETE, State.ROLLING_BACK, State.ROLLED_BACK


def test_the_groups_of_rollout_states():
    # In flight: someone must guard it. Any unfinished action counts: a first step up landing
    # under PENDING, a rollback's runbook still to run under ROLLED BACK.
    assert [s for s in State if s.in_flight(acting=False)] == [R, PA, RB]
    assert [s for s in State if s.in_flight(acting=True)] == list(State)
    # Exposed: a rollback guardrail can still act.
    assert [s for s in State if s.exposed(acting=False)] == [R, PA, C]
    assert [s for s in State if s.exposed(acting=True)] == [P, R, PA, C]
    assert [s for s in State if s.in_rollback] == [RB, RD]
    assert [s for s in State if s.terminal] == [C, RD]
    assert [s for s in State if s.may_step] == [P, R]
    assert [s for s in State if s.in_phase] == [R, PA]
    assert [s for s in State if s.rollback_in_flight(None)] == [RB]
    assert [s for s in State if s.rollback_in_flight(ActionKind.ROLLBACK)] == list(State)
