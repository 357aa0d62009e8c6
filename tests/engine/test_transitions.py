"""State transitions judged against the current state, whatever was read before."""

from __future__ import annotations

import pytest

from warroom.engine import transitions
from warroom.engine.snapshot import State

RUNNING = {"state": "RUNNING", "phase": 1, "desired": {"f": {"enabled": True, "rollout": 5.0}}, "paused_reason": "",
           "action": {"id": "s1", "kind": "step_up"}, "drift": {}}
FIFTY = {"f": {"enabled": True, "rollout": 50.0}}


def test_a_step_outcome_keeps_a_pause_made_meanwhile():
    paused = {**RUNNING, "state": "PAUSED", "paused_reason": "DBA hold"}
    after = transitions.enter_phase(paused, action_id="s1", phase=2, flags=FIFTY, now=9.0)
    assert after["state"] == "PAUSED" and after["paused_reason"] == "DBA hold"
    assert after["phase"] == 2 and after["desired"] == FIFTY and after["action"] is None
    assert transitions.enter_phase(RUNNING, action_id="s1", phase=2, flags=FIFTY, now=9.0)["state"] == "RUNNING"


@pytest.mark.parametrize("state", [State.ROLLING_BACK, State.ROLLED_BACK])
def test_nothing_overwrites_a_rollback_and_none_begins_twice(state):
    current = {**RUNNING, "state": state.value, "action": {"id": "r1", "kind": "rollback"}}
    for attempt in (lambda: transitions.enter_phase(current, action_id="s1", phase=2, flags=FIFTY, now=1.0),
                    lambda: transitions.step_failed(current, action_id="s1", reason="x", confirmed={}),
                    lambda: transitions.begin_rollback(current, action={"id": "r2"}, flags={})):
        with pytest.raises(transitions.Refused, match=state.value):
            attempt()


def test_finishing_one_action_leaves_another_in_the_slot():
    current = {**RUNNING, "action": {"id": "r1", "kind": "rollback"}}
    assert transitions.action_finished(current, action_id="s1")["action"] == {"id": "r1", "kind": "rollback"}
    assert transitions.action_finished(current, action_id="r1")["action"] is None


def test_a_rollback_is_reasserted_only_from_rolled_back_with_nothing_in_flight():
    done = {**RUNNING, "state": "ROLLED_BACK", "action": None}
    assert transitions.begin_reassert(done, action={"id": "r2"})["state"] == "ROLLING_BACK"
    with pytest.raises(transitions.Refused):
        transitions.begin_reassert({**done, "action": {"id": "r1"}}, action={"id": "r2"})


def test_initialising_twice_is_refused_and_exposed_flags_pause():
    with pytest.raises(transitions.Refused):
        transitions.initialise({"started_at": 1.0}, now=2.0, exposed={}, reason="")
    state = transitions.initialise({"state": "PENDING"}, now=2.0, exposed=FIFTY, reason="drift at start: f 50%")
    assert state["state"] == "PAUSED" and state["drift"] == FIFTY and state["started_at"] == 2.0
