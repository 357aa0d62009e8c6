"""The rollout state and its one transition table: changes judged against the current state."""

from __future__ import annotations

import pytest

from warroom.core.flagstate import FlagState
from warroom.core.snapshot import State
from warroom.engine import state as st
from warroom.engine.state import ActionRef, Event, RolloutState

STEP = ActionRef("s1", "step_up", 1.0)
RUNNING = RolloutState(State.RUNNING, phase=1, desired={"f": FlagState(True, 5.0)}, action=STEP)
FIFTY = {"f": FlagState(True, 50.0)}


def test_a_step_outcome_keeps_a_pause_made_meanwhile():
    paused = RolloutState(State.PAUSED, phase=1, desired=RUNNING.desired, paused_reason="DBA hold", action=STEP)
    after = st.enter_phase(paused, action_id="s1", phase=2, flags=FIFTY, now=9.0)
    assert after.status == State.PAUSED and after.paused_reason == "DBA hold"
    assert after.phase == 2 and after.desired == FIFTY and after.action is None
    assert st.enter_phase(RUNNING, action_id="s1", phase=2, flags=FIFTY, now=9.0).status == State.RUNNING


@pytest.mark.parametrize("state", [State.ROLLING_BACK, State.ROLLED_BACK])
def test_nothing_overwrites_a_rollback_and_none_begins_twice(state):
    current = RolloutState(state, phase=1, action=ActionRef("r1", "rollback", 1.0))
    for attempt in (lambda: st.enter_phase(current, action_id="s1", phase=2, flags=FIFTY, now=1.0),
                    lambda: st.step_failed(current, action_id="s1", reason="x", confirmed={}),
                    lambda: st.begin_rollback(current, action=ActionRef("r2", "rollback", 2.0), flags={})):
        with pytest.raises(st.Refused, match=state.value):
            attempt()


def test_finishing_one_action_leaves_another_in_the_slot():
    current = RolloutState(State.RUNNING, action=ActionRef("r1", "rollback", 1.0))
    assert st.action_finished(current, action_id="s1").action == ActionRef("r1", "rollback", 1.0)
    assert st.action_finished(current, action_id="r1").action is None


def test_a_rollback_is_reasserted_only_from_rolled_back_with_nothing_in_flight():
    done = RolloutState(State.ROLLED_BACK)
    assert st.begin_reassert(done, action=ActionRef("r2", "rollback", 2.0)).status == State.ROLLING_BACK
    with pytest.raises(st.Refused):
        st.begin_reassert(RolloutState(State.ROLLED_BACK, action=ActionRef("r1", "rollback", 1.0)), action=ActionRef("r2", "rollback", 2.0))


def test_initialising_twice_is_refused_and_exposed_flags_pause():
    with pytest.raises(st.Refused):
        st.initialise(RolloutState(started_at=1.0), now=2.0, exposed={}, reason="")
    state = st.initialise(RolloutState(), now=2.0, exposed=FIFTY, reason="drift at start: f 50%")
    assert state.status == State.PAUSED and state.drift == FIFTY and state.started_at == 2.0


def test_every_change_of_status_is_in_the_one_table():
    # Only the table moves the status: an event it lacks is refused, whatever else changes.
    for status in State:
        for event in Event:
            allowed = (status, event) in st.TRANSITIONS
            try:
                after = RolloutState(status).apply(event)
            except st.Refused:
                assert not allowed, (status, event)
            else:
                assert allowed and after.status == st.TRANSITIONS[(status, event)]
    # A pause, a step's success or a drift can never leave a rollback.
    for event in (Event.PAUSE, Event.RESUME, Event.STEP_CONFIRMED, Event.STEP_FAILED, Event.COMPLETE, Event.STEP_INTENT):
        assert (State.ROLLING_BACK, event) not in st.TRANSITIONS and (State.ROLLED_BACK, event) not in st.TRANSITIONS


def test_the_stored_form_is_the_one_state_files_have():
    stored = {"state": "PAUSED", "phase": 2, "phase_started_at": 5.0, "desired": {"f": {"enabled": True, "rollout": 50.0, "segments": []}},
              "ticked": {"2": {"1": "alice"}}, "paused_reason": "hold", "drift": {}, "started_at": 1.0,
              "action": {"id": "a1", "kind": "rollback", "since": 4.0, "target": "f off"}}
    state = RolloutState.from_json(stored)
    assert state.ticked_in() == {"1": "alice"} and state.action == ActionRef("a1", "rollback", 4.0, "f off")
    assert state.to_json() == stored
    assert RolloutState.from_json({}) == RolloutState()
