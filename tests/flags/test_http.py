"""The `http` provider against a real flag service on loopback, and through the engine."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import threading

import pytest

from tests.flags.conftest import OPERATOR
from tests.support.loopback import ok_json, redirect_to, serving
from tests.support.waiting import until, until_async
from warroom.core.flagstate import FlagState
from warroom.core.snapshot import State
from warroom.flags.base import FlagError
from warroom.flags.registry import make_provider
from warroom.plan.sources import FlagProviderConfig


def provider(flag_service, token_ref: str, **settings):
    config = FlagProviderConfig.model_validate({"provider": "http", "url": flag_service.url, "token": token_ref, **settings})
    return make_provider(config, ".")


async def test_verified_write_sends_the_seed_api_shape_and_reads_it_back(flag_service, flag_token):
    p = provider(flag_service, flag_token)
    try:
        assert await p.read("realtime-features") is None  # 404: no such flag yet
        desired = FlagState(True, 25.0, ("beta",))
        assert (await p.write_verified("realtime-features", desired)).matches(desired)
        assert flag_service.requests[-2] == (
            "POST", "/flags/realtime-features", {"enabled": True, "rollout_percentage": 25.0, "user_segments": ["beta"]})
        assert flag_service.requests[-1][:2] == ("GET", "/flags/realtime-features")
    finally:
        await p.close()


async def test_configurable_variant_put_renamed_fields_envelope_fraction(flag_service, flag_token):
    # An API that takes PUT {"on": …, "percent": 0..1} and answers {"data": {…}} on /v2/….
    p = provider(flag_service, flag_token, write_method="PUT", write_path="/flags/{name}", read_path="/flags/{name}",
                 fields={"enabled": "on", "rollout": "percent", "segments": None}, rollout_scale="fraction")
    try:
        await p.write("f", FlagState(True, 5.0))
        assert flag_service.requests[-1] == ("PUT", "/flags/f", {"on": True, "percent": 0.05})
        flag_service.flags["f"] = {"data": {"on": True, "percent": 0.05}}
        with pytest.raises(FlagError, match="no boolean `on`"):
            await p.read("f")  # without the envelope setting the answer is not understood
        p2 = provider(flag_service, flag_token, fields={"enabled": "on", "rollout": "percent", "segments": None},
                      rollout_scale="fraction", envelope="data")
        assert await p2.read("f") == FlagState(True, 5.0)
        with pytest.raises(FlagError, match="no segments field"):
            await p2.write("f", FlagState(True, 5.0, ("beta",)))
        await p2.close()
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"fail": 500}, r"^HTTP 500: flag backend unavailable \(request had Bearer \*\*\*\)$"),
        ({"fail": 503}, r"^HTTP 503"),
        ({"delay": "until the end of the test"}, r"^timeout after 0.3s$"),
        ({"ignore_writes": True}, r"^read-back shows 5%, wanted 50%$"),
        ({"token": "env:WARROOM_TEST_WRONG_TOKEN"}, r"^HTTP 401: check the token \(env:WARROOM_TEST_WRONG_TOKEN\)$"),
    ],
)
async def test_failures_become_short_reasons(flag_service, flag_token, monkeypatch, fault, reason):
    flag_service.flags["f"] = {"enabled": True, "rollout_percentage": 5, "user_segments": []}
    monkeypatch.setenv("WARROOM_TEST_WRONG_TOKEN", "not-the-token")
    # Only the unanswered request may time out: the others get as long as a busy machine takes.
    p = provider(flag_service, fault.get("token", flag_token), timeout="0.3s" if "delay" in fault else "30s")
    if "fail" in fault:
        flag_service.fail(fault["fail"])
    answer = threading.Event()
    flag_service.delay = answer if "delay" in fault else 0.0
    flag_service.ignore_writes = fault.get("ignore_writes", False)
    try:
        with pytest.raises(FlagError, match=reason):
            await p.write_verified("f", FlagState(True, 50.0))
    finally:
        answer.set()
        await p.close()


async def test_unreachable_service_and_unset_token(flag_service, flag_token, monkeypatch):
    flag_service.stop()
    p = provider(flag_service, flag_token)
    with pytest.raises(FlagError, match=r"^cannot reach 127.0.0.1: ConnectError$"):
        await p.read("f")
    await p.close()
    monkeypatch.delenv("WARROOM_TEST_FLAG_TOKEN")
    p = provider(flag_service, flag_token)
    with pytest.raises(FlagError, match="environment variable WARROOM_TEST_FLAG_TOKEN is not set"):
        await p.read("f")
    await p.close()


def attempt_now(engine) -> int:
    """The attempt the rollback in flight is at (0: none yet)."""
    return engine.executor.attempts[next(iter(engine.executor.attempts))][0] if engine.executor.attempts else 0


async def test_engine_rollback_retries_through_503_until_the_service_is_back(flag_service, flag_token, make_flag_engine):
    engine = await make_flag_engine({"provider": "http", "url": flag_service.url, "token": flag_token, "timeout": "1s"}, "f")
    await engine.tick()
    assert await engine.step_up(OPERATOR) == "stepped up to phase 1"
    assert flag_service.flags["f"] == {"enabled": True, "rollout_percentage": 5.0, "user_segments": []}

    flag_service.fail(503)
    task = asyncio.ensure_future(engine.rollback(OPERATOR, "error rate"))
    await until_async("three rollback attempts", lambda: attempt_now(engine) >= 3)
    snap = engine.publish()
    assert not task.done() and engine.state == State.ROLLING_BACK
    assert snap.action.kind == "rollback" and snap.action.attempt >= 3 and snap.action.last_error == "f: HTTP 503: " \
        "flag backend unavailable (request had Bearer ***)"

    flag_service.recover()  # the flag service comes back
    assert await asyncio.wait_for(task, 10) == "rolled back"
    assert engine.state == State.ROLLED_BACK
    assert flag_service.flags["f"]["enabled"] is False
    attempts = [e for e in engine.store.entries() if e.kind == "rollback.attempt"]
    assert [e.data["attempt"] for e in attempts[:3]] == [1, 2, 3]
    assert attempts[0].message == "rollback attempt 1 on f failed: HTTP 503: flag backend unavailable (request had Bearer ***)"


async def test_engine_sees_drift_made_in_the_flag_service(flag_service, flag_token, make_flag_engine):
    engine = await make_flag_engine({"provider": "http", "url": flag_service.url, "token": flag_token}, "f")
    await engine.tick()
    await engine.step_up(OPERATOR)
    # Someone turns the flag up to 40 % in the flag service's own UI.
    flag_service.flags["f"] = {"enabled": True, "rollout_percentage": 40, "user_segments": []}
    snap = await engine.tick()
    assert engine.state == State.PAUSED and snap.drift
    (view,) = snap.flags
    assert view.drift and view.desired == FlagState(True, 5.0) and view.observed == FlagState(True, 40.0)
    assert [e.kind for e in engine.store.entries()].count("drift.detected") == 1
    assert "resumed" in await engine.ack_drift(OPERATOR)
    assert engine.state == State.RUNNING and not (await engine.tick()).drift


async def test_engine_step_up_retries_a_transient_failure(flag_service, flag_token, make_flag_engine):
    engine = await make_flag_engine({"provider": "http", "url": flag_service.url, "token": flag_token}, "f")
    await engine.tick()
    # Three failed requests: write, the read before the retry (is it set already?), write.
    flag_service.fail(503, count=3)
    assert await engine.step_up(OPERATOR) == "stepped up to phase 1"
    attempts = [e for e in engine.store.entries() if e.kind == "step.attempt"]
    assert [e.data["attempt"] for e in attempts] == [1, 2] and attempts[0].data["error"].startswith("HTTP 503")
    assert flag_service.flags["f"]["rollout_percentage"] == 5.0



@pytest.mark.parametrize("from_phase", [0, 1])
async def test_a_breach_while_a_step_up_waits_on_a_slow_flag_api_rolls_back_and_undoes_the_late_write(
        flag_service, flag_token, make_flag_engine, from_phase):
    # A fault 10 s in, and a guardrail that acts on its first bad sample.
    sources = {"sim": {"type": "simulator", "seed": 1, "noise": 0,
                       "faults": [{"metric": "error_rate", "at": "10s", "value": 0.05, "while_exposed": False}]}}
    guardrails = [{"id": "errors", "pane": "errors", "above": 0.01, "action": "rollback"}]
    engine = await make_flag_engine({"provider": "http", "url": flag_service.url, "token": flag_token, "timeout": "5s"},
                                    "f", sources=sources, guardrails=guardrails)
    for _ in range(from_phase):
        await engine.step_up(OPERATOR)
    land = threading.Event()
    flag_service.fault_writes("apply-late", land, count=1)  # the step up's write hangs in a slow flag API …
    step = asyncio.ensure_future(engine.step_up(OPERATOR))
    await until_async("the step's write", lambda: flag_service.writes and flag_service.writes[-1].fault == "apply-late")
    assert not step.done()

    engine.clock.advance(10)
    try:
        await engine.tick()  # the guardrail still acts while the command waits
        assert engine.state == State.ROLLED_BACK and flag_service.flags["f"]["enabled"] is False
        # The step stopped when the rollback took over (it does not wait on a write the rollback made moot) …
        assert await asyncio.wait_for(step, 10) == "step up abandoned: rolled back meanwhile"
    finally:
        land.set()  # … and its write lands after all that
    entries = engine.store.entries()
    outcome = next(e for e in entries if e.kind == "step.outcome" and e.seq > next(i.seq for i in entries if i.kind == "rollback.intent"))
    assert outcome.message == f"step up to phase {from_phase + 1} abandoned: a rollback took over"
    # … and its write, landing after the rollback's, is the rollback's to undo: the next tick reads it back
    # exposed and sets it off again, journaled.
    await until_async("the step's write to land", lambda: flag_service.flags["f"]["enabled"])
    await engine.tick()
    await engine.wait_idle()
    assert flag_service.flags["f"]["enabled"] is False
    assert [e.kind for e in engine.store.entries()].count("rollback.reassert") == 1
    snap = await engine.tick()
    assert not snap.drift and snap.state == State.ROLLED_BACK


@pytest.mark.slow  # headless runners as processes
def test_sigkill_while_a_rollback_retries_its_flag_write_finishes_it_on_restart(flag_service, flag_token, tmp_path):
    from tests.test_cli import WARROOM, journal, sample_variant, warroom

    # The runner is killed after the rollback intent and before any flag is confirmed off.
    plan = sample_variant(tmp_path, flag_provider={"provider": "http", "url": flag_service.url, "token": flag_token},
                          rollback={"flags": {"realtime-features": False, "websocket_simple": False, "health_simple": True},
                                                    "steps": []})
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {metric: error_rate, phase: 1, after: 1m, mode: set, value: 0.05, while_exposed: false}\n")
    flag_service.refuse_disable = True
    runner = subprocess.Popen([*WARROOM, "run", "--headless", str(plan), "--speed", "max", "--faults", str(faults)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def kinds_in_db() -> list[str]:
        if not (tmp_path / "state.sqlite").exists():
            return []
        with contextlib.closing(sqlite3.connect(tmp_path / "state.sqlite", timeout=15)) as db:
            try:
                return [k for (k,) in db.execute("SELECT kind FROM journal ORDER BY seq")]
            except sqlite3.OperationalError:  # the runner has created the file, not yet its tables
                return []

    until("a rollback attempt", lambda: "rollback.attempt" in kinds_in_db() or runner.poll() is not None)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    with contextlib.closing(sqlite3.connect(tmp_path / "state.sqlite")) as db:
        before = db.execute("SELECT seq, kind, message FROM journal ORDER BY seq").fetchall()
    before_kinds = [k for _, k, _ in before]
    assert "rollback.attempt" in before_kinds and "rollback.confirmed" not in before_kinds, before_kinds
    assert flag_service.flags["realtime-features"]["enabled"] is True  # still exposed when the runner died

    flag_service.recover()
    restart = warroom("run", "--headless", str(plan), "--speed", "max", "--until-done", timeout=60)
    assert restart.returncode == 5, restart.stdout + restart.stderr
    after = journal(plan)
    assert [(e["seq"], e["kind"], e["message"]) for e in after[: len(before)]] == [tuple(r) for r in before]
    kinds = [e["kind"] for e in after]
    for kind in ("rollback.intent", "rollback.resume", "rollback.confirmed", "rollback.outcome"):
        assert kinds.count(kind) == 1, (kind, kinds)
    assert kinds.index("rollback.resume") >= len(before) and kinds.count("rollback.attempt") == before_kinds.count("rollback.attempt")
    assert flag_service.flags["realtime-features"]["enabled"] is False and flag_service.flags["websocket_simple"]["enabled"] is False


async def test_a_rollback_stuck_on_a_failing_api_is_confirmed_when_a_human_switches_the_flag_off(flag_service, flag_token, make_flag_engine):
    # The flag API refuses to switch anything off; the on-call engineer turns the flag off by
    # another road (the flag service's own UI). The next retry's read-back confirms it.
    engine = await make_flag_engine({"provider": "http", "url": flag_service.url, "token": flag_token, "timeout": "1s"}, "f")
    await engine.tick()
    await engine.step_up(OPERATOR)
    flag_service.refuse_disable = True
    task = asyncio.ensure_future(engine.rollback(OPERATOR, "error rate"))
    await until_async("two rollback attempts", lambda: attempt_now(engine) >= 2)
    assert not task.done() and engine.state == State.ROLLING_BACK
    with flag_service.lock:
        flag_service.flags["f"] = {"enabled": False, "rollout_percentage": 0, "user_segments": []}
    assert await asyncio.wait_for(task, 10) == "rolled back"
    assert engine.state == State.ROLLED_BACK and flag_service.refuse_disable  # the API never accepted the write
    kinds = [(e.kind, e.data.get("confirmed_by_read")) for e in engine.store.entries() if e.kind.startswith("rollback.")]
    assert ("rollback.attempt", True) in kinds and kinds[-1][0] == "rollback.outcome"
    assert any(k == "rollback.confirmed" for k, _ in kinds)


async def test_a_redirect_to_another_host_is_not_followed_and_says_where_it_points(flag_token, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_API_KEY", "SECRET-APIKEY-0815")
    with serving(ok_json(b'{"enabled": true, "rollout_percentage": 5}')) as elsewhere, \
            serving(redirect_to(elsewhere.other_origin_url)) as origin:
        p = make_provider(FlagProviderConfig.model_validate(
            {"provider": "http", "url": origin.url, "token": flag_token, "headers": {"X-Api-Key": "env:WARROOM_TEST_API_KEY"}}), ".")
        try:
            with pytest.raises(FlagError) as info:
                await p.write_verified("f", FlagState(True, 5.0))
        finally:
            await p.close()
    assert info.value.reason == (f"HTTP 301: redirects to {elsewhere.other_origin_url}, not followed (credentials never go "
                                 "to another address); set the url to the address it points at")
    assert origin.requests[0].headers["x-api-key"] == "SECRET-APIKEY-0815"
    assert elsewhere.requests == []  # neither the token nor the API key went anywhere else


async def test_a_429_retry_after_is_honoured_by_the_next_write_and_reads_do_not_ask_meanwhile(make_flag_engine):
    stored: dict[str, bytes] = {}

    def flag_api(request):
        if request.method == "GET":
            return (200, {}, stored[request.path]) if request.path in stored else (404, {}, b"{}")
        if sum(r.method == "POST" for r in api.requests) == 1:
            return 429, {"Retry-After": "2", "Content-Type": "application/json"}, b'{"error": "slow down"}'
        stored[request.path] = request.body
        return 200, {}, b"{}"

    with serving(flag_api) as api:
        engine = await make_flag_engine({"provider": "http", "url": api.url, "timeout": "5s"}, "f")
        assert await asyncio.wait_for(engine.step_up(OPERATOR), 20) == "stepped up to phase 1"
    posts = [r for r in api.requests if r.method == "POST"]
    assert len(posts) == 2
    # Nothing was asked between the refusal and the moment the server named; then the write went through.
    after = [r for r in api.requests if r.at > posts[0].at]
    assert after[0] is posts[1] and posts[1].at - posts[0].at >= 1.9
    (attempt,) = [e for e in engine.store.entries() if e.kind == "step.attempt"]
    assert attempt.message == "step attempt 1 on f failed: HTTP 429: rate limited, the server asks to wait 2s"
