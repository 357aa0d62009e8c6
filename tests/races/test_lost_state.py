"""A state file lost or emptied under a live launch (issue 12, item 5)."""

from __future__ import annotations

from tests.races.conftest import Rollout, plan_data


def test_an_emptied_state_file_over_live_flags_pauses_and_steps_nothing(tmp_path, flags):
    # The launch is at 100 %; its state file is zero bytes (a full disk, a bad restore).
    flags.flags["feature"] = {"enabled": True, "rollout_percentage": 100, "user_segments": []}
    # A rehearsal copy: fast time is refused on a staging plan's real state.
    rollout = Rollout(tmp_path, plan_data(flags, rollout={"name": "race", "environment": "drill"}))
    rollout.state.write_bytes(b"")
    run = rollout.verb("run", "--headless", "--speed", "max", "--for", "1m")
    assert run.returncode == 3, run.stdout + run.stderr  # PAUSED
    assert flags.writes == []  # not 100 → 5 → 50 → 100 %: no write at all
    status = rollout.status()
    assert status["state"] == "PAUSED" and status["phase"] is None
    reason = status["paused_reason"]
    assert "feature 100% already exposed" in reason and "warroom ack PLAN" in reason and "warroom rollback PLAN" in reason
    drift = next(e for e in rollout.journal() if e["kind"] == "drift.detected")
    assert drift["data"]["flags"] == {"feature": {"enabled": True, "rollout": 100.0, "segments": []}}

    # A human who knows the launch is live adopts the flags: they are phase 3's, so that is where it stands.
    assert rollout.verb("up").returncode == 0
    ack = rollout.verb("ack")
    assert ack.returncode == 0 and ack.stdout.strip() == "drift acknowledged; resumed at phase 3", ack.stdout + ack.stderr
    status = rollout.status()
    # Phase 3 is the last (no soak): the automatic step completes it, with no flag write.
    assert status["state"] in ("RUNNING", "COMPLETE") and status["phase"]["index"] == 3
    assert flags.writes == []
