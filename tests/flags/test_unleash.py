"""The `unleash` provider against a real unleash-server on PostgreSQL, standalone and through the engine."""

from __future__ import annotations

import pytest

from tests.flags.conftest import OPERATOR
from warroom.core.flagstate import FlagState
from warroom.core.snapshot import State
from warroom.flags.base import FlagError
from warroom.flags.registry import make_provider
from warroom.plan.sources import FlagProviderConfig


def settings(unleash: str, token_ref: str, **extra) -> dict:
    return {"provider": "unleash", "url": unleash, "token": token_ref, "environment": "production", **extra}


def unleash_provider(unleash: str, token_ref: str, **extra):
    return make_provider(FlagProviderConfig.model_validate(settings(unleash, token_ref, **extra)), ".")


def production(admin, feature: str) -> dict:
    """What the Unleash API itself reports for the feature in production."""
    response = admin.get(f"/features/{feature}/environments/production")
    response.raise_for_status()
    return response.json()


async def test_engine_steps_5_25_50_and_rolls_back_as_unleash_reports(unleash, unleash_token, unleash_admin,
                                                                      unleash_feature, make_flag_engine):
    engine = await make_flag_engine(settings(unleash, unleash_token), unleash_feature)
    await engine.tick()
    for phase, pct in enumerate((5, 25, 50), start=1):
        assert await engine.step_up(OPERATOR) == f"stepped up to phase {phase}"
        env = production(unleash_admin, unleash_feature)
        # One rollout strategy, created before enabling (else Unleash adds a 100 % default one).
        assert env["enabled"] is True and [s["name"] for s in env["strategies"]] == ["flexibleRollout"]
        assert env["strategies"][0]["parameters"]["rollout"] == str(pct)
        assert await engine.provider.read(unleash_feature) == FlagState(True, float(pct))
        assert not (await engine.tick()).drift
    assert await engine.rollback(OPERATOR, "p95 over 500 ms") == "rolled back"
    assert engine.state == State.ROLLED_BACK
    assert production(unleash_admin, unleash_feature)["enabled"] is False
    confirmed = [e for e in engine.store.entries() if e.kind == "rollback.confirmed"]
    assert confirmed and confirmed[0].data["observed"][unleash_feature]["enabled"] is False


async def test_percentage_changed_in_the_unleash_ui_is_drift(unleash, unleash_token, unleash_admin,
                                                             unleash_feature, make_flag_engine):
    engine = await make_flag_engine(settings(unleash, unleash_token), unleash_feature)
    await engine.tick()
    await engine.step_up(OPERATOR)
    strategy = production(unleash_admin, unleash_feature)["strategies"][0]
    unleash_admin.patch(f"/features/{unleash_feature}/environments/production/strategies/{strategy['id']}",
                        json=[{"op": "replace", "path": "/parameters/rollout", "value": "40"}]).raise_for_status()
    snap = await engine.tick()
    assert engine.state == State.PAUSED and snap.flags[0].drift
    assert snap.flags[0].observed == FlagState(True, 40.0)
    assert any(e.kind == "drift.detected" and "is 40%" in e.message for e in engine.store.entries())


async def test_segments_become_our_constraint_and_others_are_kept(unleash, unleash_token, unleash_admin, unleash_feature):
    path = f"/features/{unleash_feature}/environments/production/strategies"
    foreign = {"contextName": "appName", "operator": "IN", "values": ["web"]}
    unleash_admin.post(path, json={"name": "flexibleRollout", "constraints": [foreign],
                                   "parameters": {"rollout": "10", "stickiness": "default", "groupId": unleash_feature}}
                       ).raise_for_status()
    p = unleash_provider(unleash, unleash_token)
    try:
        desired = FlagState(True, 25.0, ("beta",))
        assert await p.write_verified(unleash_feature, desired) == desired
        (strategy,) = production(unleash_admin, unleash_feature)["strategies"]
        # Unleash adds defaults (inverted, caseInsensitive) to every constraint; compare what we set.
        assert [{k: c[k] for k in foreign} for c in strategy["constraints"]] == [
            foreign, {"contextName": "segment", "operator": "IN", "values": ["beta"]}]
        assert await p.write_verified(unleash_feature, FlagState(True, 25.0)) == FlagState(True, 25.0)
        (strategy,) = production(unleash_admin, unleash_feature)["strategies"]
        assert [c["contextName"] for c in strategy["constraints"]] == ["appName"]
    finally:
        await p.close()


async def test_failures_say_what_to_do(unleash, unleash_token, unleash_feature, monkeypatch):
    p = unleash_provider(unleash, unleash_token)
    try:
        assert await p.read("no-such-feature") is None
        with pytest.raises(FlagError, match="feature no-such-feature does not exist in Unleash project default"):
            await p.write("no-such-feature", FlagState(True, 5.0))
        with pytest.raises(FlagError, match=r"whole percents; 0.5% cannot be set"):
            await p.write(unleash_feature, FlagState(True, 0.5))
    finally:
        await p.close()
    monkeypatch.setenv("WARROOM_TEST_BAD_UNLEASH_TOKEN", "*:*.not-a-token")
    p = unleash_provider(unleash, "env:WARROOM_TEST_BAD_UNLEASH_TOKEN")
    try:
        with pytest.raises(FlagError, match=r"^HTTP 401: check the token \(env:WARROOM_TEST_BAD_UNLEASH_TOKEN\)$"):
            await p.read(unleash_feature)
    finally:
        await p.close()


def test_check_reports_a_feature_missing_from_unleash(unleash, unleash_token, unleash_feature, tmp_path, monkeypatch):
    import subprocess
    import sys

    import yaml

    from tests.flags.conftest import PLAN

    data = yaml.safe_load(PLAN)
    data["flag_provider"] = settings(unleash, unleash_token)
    for phase in data["phases"]:
        phase["flags"] = {unleash_feature: 5, "never-created-in-unleash": 5}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "warroom", "check", str(path)], capture_output=True, text=True)
    assert result.returncode == 7, result.stdout + result.stderr
    assert f"ok   {unleash_feature}: off" in result.stdout
    assert "FAIL never-created-in-unleash: no such feature in Unleash: create it there first" in result.stdout
