"""The `flagd` provider: atomic rewrites of a flagd definition file, checked by re-reading and
by the OpenFeature flagd provider evaluating the file in-process (resolver FILE, no daemon)."""

from __future__ import annotations

import asyncio
import json

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from tests.flags.conftest import OPERATOR
from warroom.core.flagstate import FlagState
from warroom.core.snapshot import State
from warroom.flags.base import FlagError
from warroom.flags.registry import make_provider
from warroom.plan.sources import FlagProviderConfig

USERS = 4000

# Flags and keys warroom does not own: they must come through every rewrite unchanged.
FOREIGN = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "$evaluators": {"emailWithFaas": {"ends_with": [{"var": "email"}, "@faas.com"]}},
    "flags": {
        "header-color": {
            "state": "ENABLED",
            "variants": {"red": "#f00", "blue": "#00f"},
            "defaultVariant": "red",
            "targeting": {"if": [{"$ref": "emailWithFaas"}, "blue", None]},
        },
    },
}


def evaluate(path, flag: str, segment: str | None = None) -> tuple[float, set[Reason]]:
    """Share of USERS the OpenFeature flagd provider turns `flag` on for, reading `path` itself."""
    api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)))
    try:
        client = api.get_client()
        on, reasons = 0, set()
        for i in range(USERS):
            attrs = {"segment": segment} if segment else {}
            details = client.get_boolean_details(flag, False, EvaluationContext(targeting_key=f"user-{i}", attributes=attrs))
            assert details.error_code is None, details.error_message
            on += details.value
            reasons.add(details.reason)
        return on / USERS, reasons
    finally:
        api.shutdown()


def flagd(path):
    return make_provider(FlagProviderConfig.model_validate({"provider": "flagd", "path": str(path)}), path.parent)


async def test_engine_steps_5_25_50_and_rolls_back_in_the_file_openfeature_reads(tmp_path, make_flag_engine):
    path = tmp_path / "flags.flagd.json"
    path.write_text(json.dumps(FOREIGN))
    engine = await make_flag_engine({"provider": "flagd", "path": path.name}, "realtime-features")
    await engine.tick()
    for phase, pct in enumerate((5, 25, 50), start=1):
        assert await engine.step_up(OPERATOR) == f"stepped up to phase {phase}"
        data = json.loads(path.read_text())
        assert data["flags"]["realtime-features"]["targeting"] == {"fractional": [["on", pct], ["off", 100 - pct]]}
        assert await engine.provider.read("realtime-features") == FlagState(True, float(pct))
        share, reasons = evaluate(path, "realtime-features")
        assert share == pytest.approx(pct / 100, abs=0.03) and reasons == {Reason.TARGETING_MATCH}
        assert {k: v for k, v in data.items() if k != "flags"} == {k: v for k, v in FOREIGN.items() if k != "flags"}
        assert data["flags"]["header-color"] == FOREIGN["flags"]["header-color"]
    assert await engine.rollback(OPERATOR, "drill") == "rolled back"
    assert engine.state == State.ROLLED_BACK
    assert json.loads(path.read_text())["flags"]["realtime-features"]["state"] == "DISABLED"
    share, reasons = evaluate(path, "realtime-features")
    assert share == 0 and reasons == {Reason.DISABLED}


async def test_segments_full_rollout_and_fractional_percentages(tmp_path):
    path = tmp_path / "flags.json"
    p = flagd(path)
    await p.write_verified("f", FlagState(True, 50.0, ("beta", "staff")))
    assert evaluate(path, "f", segment="beta")[0] == pytest.approx(0.5, abs=0.03)
    assert evaluate(path, "f", segment="everyone-else")[0] == 0
    await p.write_verified("f", FlagState(True, 100.0))
    entry = json.loads(path.read_text())["flags"]["f"]
    assert entry["defaultVariant"] == "on" and "targeting" not in entry
    assert evaluate(path, "f")[0] == 1.0
    # flagd weights are integers: 0.1 % is one in a thousand.
    assert await p.write_verified("f", FlagState(True, 0.1)) == FlagState(True, 0.1)
    assert json.loads(path.read_text())["flags"]["f"]["targeting"] == {"fractional": [["on", 1], ["off", 999]]}


async def test_concurrent_writers_lose_no_flag(tmp_path):
    path = tmp_path / "flags.json"
    writers = [flagd(path) for _ in range(8)]
    await asyncio.gather(*(w.write(f"flag-{i}", FlagState(True, i)) for i, w in enumerate(writers * 3)))
    assert sorted(json.loads(path.read_text())["flags"]) == sorted(f"flag-{i}" for i in range(24))
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".flags.json-")]  # no temp file left behind


async def test_hand_edited_or_broken_files_are_reported_not_guessed(tmp_path):
    path = tmp_path / "flags.json"
    p = flagd(path)
    path.write_text(json.dumps({"flags": {"f": {"state": "ENABLED", "variants": {"on": True, "off": False},
                                                "defaultVariant": "off", "targeting": {"if": [{"var": "x"}, "on", "off"]}}}}))
    with pytest.raises(FlagError, match="targeting warroom does not manage"):
        await p.read("f")
    # Writing takes the flag over: the unmanaged targeting is replaced.
    assert await p.write_verified("f", FlagState(True, 25.0)) == FlagState(True, 25.0)
    path.write_text('{"flags": {')
    with pytest.raises(FlagError, match=r"unreadable flagd flag definitions \(JSONDecodeError\)"):
        await p.read("f")
    path.write_text("[]")
    with pytest.raises(FlagError, match="not a flagd definition file"):
        await p.write("f", FlagState(False))
