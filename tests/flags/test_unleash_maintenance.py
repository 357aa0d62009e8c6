"""The flag service's own freeze: the real Unleash switched into maintenance mode through its admin API.

In maintenance mode Unleash answers 503 to POST/PUT/DELETE under /api/admin but lets PATCH
through. warroom switched a feature off with `POST …/off` and stepped up with a PATCH: during
the vendor's freeze the rollback was refused while the step up passed. Now a rollback takes
the exposure to 0 with the PATCH the vendor still accepts (verified by read-back), and a
step up is refused while the vendor is frozen.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.conftest import UNLEASH_TOKEN
from tests.flags.conftest import OPERATOR, PLAN
from tests.flags.test_unleash import production, settings
from tests.support.waiting import until, until_async
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.engine.executor import CommandError


def set_maintenance(unleash: str, enabled: bool) -> None:
    """Switch maintenance mode and wait until the server acts on it. Unleash caches the mode for a minute and a
    background job can re-cache the old value while the switch is written: switching again clears that cache."""
    headers = {"Authorization": UNLEASH_TOKEN}

    def switched() -> bool:
        httpx.post(f"{unleash}/api/admin/maintenance", json={"enabled": enabled}, headers=headers, timeout=10).raise_for_status()
        return httpx.get(f"{unleash}/api/admin/ui-config", headers=headers, timeout=10).json().get("maintenanceMode") is enabled

    until(f"Unleash says maintenance mode is {'on' if enabled else 'off'}", switched, every=0.2)


@pytest.fixture
def maintenance(unleash) -> Iterator[None]:
    """Unleash in maintenance mode for one test; always switched off again (the server lives for the session)."""
    set_maintenance(unleash, True)
    try:
        yield
    finally:
        set_maintenance(unleash, False)


def test_maintenance_mode_refuses_post_and_lets_patch_through(unleash, unleash_admin, unleash_feature, maintenance):
    """What the vendor does, checked on the real server (what the fix relies on)."""
    path = f"/features/{unleash_feature}/environments/production"
    assert unleash_admin.post(f"{path}/on").status_code == 503
    assert unleash_admin.post(f"{path}/strategies", json={"name": "flexibleRollout", "parameters": {"rollout": "5"}}).status_code == 503


async def frozen_at(phase: int, unleash: str, unleash_token: str, unleash_feature: str, make_flag_engine) -> tuple:
    """An engine stepped up to `phase` while Unleash takes changes, then Unleash in maintenance mode; (engine, snapshot)."""
    set_maintenance(unleash, False)
    engine = await make_flag_engine(settings(unleash, unleash_token), unleash_feature)
    await engine.tick()
    for _ in range(phase):
        await engine.step_up(OPERATOR)
    set_maintenance(unleash, True)
    return engine, await engine.tick()


async def test_rollback_during_maintenance_takes_exposure_to_zero(unleash, unleash_token, unleash_admin, unleash_feature,
                                                                  make_flag_engine, maintenance):
    engine, _ = await frozen_at(2, unleash, unleash_token, unleash_feature, make_flag_engine)
    assert production(unleash_admin, unleash_feature)["strategies"][0]["parameters"]["rollout"] == "25"

    await engine.rollback(OPERATOR, "p95 over 500 ms", wait=False)

    def outcome() -> list:
        return [e for e in engine.store.entries() if e.kind in (Kind.ROLLBACK_CONFIRMED, Kind.ROLLBACK_ATTEMPT)]
    first = (await until_async("the rollback's first write is confirmed or fails", outcome))[0]
    assert first.kind == Kind.ROLLBACK_CONFIRMED, first.message  # before the fix: "HTTP 503: Unleash is currently in maintenance mode."
    env = production(unleash_admin, unleash_feature)
    exposed = env["enabled"] and any(s["parameters"].get("rollout") != "0" for s in env["strategies"] if not s.get("disabled"))
    assert not exposed, env
    await engine.wait_idle()
    assert engine.state == State.ROLLED_BACK
    fallback = [e for e in engine.store.entries() if e.kind == Kind.FLAG_FALLBACK]
    assert fallback and "maintenance mode" in fallback[0].message
    # The rollout stays rolled back: 0 % on is no drift from off.
    snap = await engine.tick()
    assert not snap.drift and engine.state == State.ROLLED_BACK


async def test_step_up_is_refused_while_unleash_is_in_maintenance(unleash, unleash_token, unleash_admin, unleash_feature,
                                                                  make_flag_engine, maintenance):
    engine, snap = await frozen_at(1, unleash, unleash_token, unleash_feature, make_flag_engine)
    with pytest.raises(CommandError, match="maintenance mode"):
        await engine.step_up(OPERATOR, force=True, reason="the launch must go on")  # before the fix: the PATCH passed
    assert production(unleash_admin, unleash_feature)["strategies"][0]["parameters"]["rollout"] == "5"
    assert any("maintenance mode" in f.reason for f in snap.freezes)
    assert any("maintenance mode" in b for b in snap.force_blockers)
    set_maintenance(unleash, False)
    await engine.tick()
    assert await engine.step_up(OPERATOR) == "stepped up to phase 2"


def test_check_says_unleash_is_in_maintenance_mode(unleash, unleash_token, unleash_feature, tmp_path, maintenance):
    data = yaml.safe_load(PLAN)
    data["flag_provider"] = settings(unleash, unleash_token)
    for phase in data["phases"]:
        phase["flags"] = {unleash_feature: 5}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "warroom", "check", str(path)], capture_output=True, text=True)
    out = result.stdout + result.stderr
    assert "WARN flag service frozen: Unleash is in maintenance mode" in out, out
    assert "a rollback sets rollout 0%); step ups are refused until it ends" in out, out
