"""Drills of the exposure check: offline, a fault on the sessions the flag assigns plays a flag
that does not reach the service."""

from __future__ import annotations

from tests.drills.conftest import drill
from warroom.drills.scenario import parse_scenario

BLIND_FLAG = """
name: flag-not-reaching-the-service
title: The flag is set, the service never sees it
timeline:
  - {phase: 1, after: 0s, metric: session_rate, set: 0}
responder:
  routine: false
  actions:
    - {phase: 1, after: 10s, do: force_step, reason: the dashboards look fine}
expect: {action: none}
duration: 1m
"""


async def test_stepping_up_past_the_exposure_check_is_a_mistake(tmp_path):
    card, db, out = await drill(tmp_path, parse_scenario(BLIND_FLAG))
    assert not card.passed
    assert any("red gate" in m and "exposure: cohort 0% — is the flag reaching the service? (plan 5%) ✗" in m for m in card.mistakes)
    assert "exposure.mismatch" in out
