"""Rollback runbook steps that call out (webhook, http) against real loopback servers:
credentials never go to another address, and what a server says back is stored
redacted — a secret URL's parts included — and cut short."""

from __future__ import annotations

import pytest

from tests.support.loopback import redirect_to, serving
from tests.support.terminal import running
from tests.support.waiting import until
from warroom.core import secrets
from warroom.core.clock import VirtualClock
from warroom.core.identity import Actor
from warroom.engine.build import build_engine
from warroom.outbound.runbook import run_step
from warroom.plan.load import load_plan
from warroom.plan.rollback import HttpStep, RunStep, WebhookStep

CONTEXT = {"rollout": "launch", "environment": "staging", "phase": 2, "reason": "error rate"}


async def test_an_http_step_is_not_redirected_to_another_host_with_its_credentials(monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_STATUS_TOKEN", "SECRET-STATUS-0815")
    monkeypatch.setenv("WARROOM_TEST_API_KEY", "SECRET-APIKEY-0815")
    with serving(lambda r: (200, {}, b"ok")) as elsewhere, serving(redirect_to(elsewhere.other_origin_url, 307)) as origin:
        step = HttpStep.model_validate({"name": "status page", "http": {
            "url": origin.url + "/api/incidents", "body": {"text": "{rollout} rolled back"},
            "headers": {"Authorization": "env:WARROOM_TEST_STATUS_TOKEN", "X-Api-Key": "env:WARROOM_TEST_API_KEY"}}})
        result = await run_step(step, CONTEXT)
    assert not result.ok
    assert result.summary.startswith(f"HTTP 307: redirects to {elsewhere.other_origin_url}, not followed")
    assert origin.requests[0].headers["x-api-key"] == "SECRET-APIKEY-0815"
    assert elsewhere.requests == []


async def test_a_webhook_step_is_not_redirected(monkeypatch):
    with serving(lambda r: (200, {}, b"ok")) as elsewhere, serving(redirect_to(elsewhere.other_origin_url)) as origin:
        monkeypatch.setenv("WARROOM_TEST_RUNBOOK_HOOK", f"{origin.url}/hook-a1b2c3d4e5/runbook")
        result = await run_step(WebhookStep(webhook="env:WARROOM_TEST_RUNBOOK_HOOK"), CONTEXT)
    assert not result.ok and "not followed" in result.summary
    assert elsewhere.requests == []


async def test_a_receiver_echoing_its_secret_path_and_a_huge_body_are_stored_redacted_and_cut(monkeypatch):
    def echo(request):  # a receiver's error page quoting the request line, then pages of noise
        return 500, {"Content-Type": "text/plain"}, f"no route for POST {request.path}\n".encode() + b"x" * 5_000_000

    with serving(echo) as receiver:
        monkeypatch.setenv("WARROOM_TEST_RUNBOOK_HOOK", f"{receiver.url}/hook-a1b2c3d4e5/runbook?sig=Zm9vYmFy")
        result = await run_step(WebhookStep(webhook="env:WARROOM_TEST_RUNBOOK_HOOK"), CONTEXT)
    assert (result.ok, result.summary) == (False, "HTTP 500")
    assert "hook-a1b2c3d4e5" not in result.detail and "Zm9vYmFy" not in result.detail
    assert result.detail.startswith(f"no route for POST {secrets.MASK}")
    assert len(result.detail) < 400 and result.detail.endswith(" bytes cut)")


async def test_an_echoed_secret_path_reaches_neither_the_journal_nor_the_database(tmp_path, monkeypatch):
    def echo(request):
        return 500, {"Content-Type": "text/plain"}, f"no route for POST {request.path}\n".encode() + b"x" * 5_000_000

    (tmp_path / "plan.yaml").write_text("""
rollout: {name: hooks, environment: staging}
sources: {sim: {type: simulator, seed: 1, noise: 0}}
flag_provider: {provider: local, path: flags.json}
state: state.sqlite
panes: [{id: errors, title: Errors, query: error_rate, unit: ratio}]
phases: [{name: Beta 5%, flags: {f: 5}, hold: 0s}]
rollback: {steps: [{webhook: env:WARROOM_TEST_RUNBOOK_HOOK}], dry_run: false}
""")
    with serving(echo) as receiver:
        monkeypatch.setenv("WARROOM_TEST_RUNBOOK_HOOK", f"{receiver.url}/hook-a1b2c3d4e5/runbook")
        plan = load_plan(tmp_path / "plan.yaml")
        oncall = Actor(user="oncall", host="bastion", ssh_client="", tty="")
        engine = build_engine(plan, clock=VirtualClock())
        await engine.start()
        await engine.step_up(oncall)
        await engine.rollback(oncall, "drill")
        await engine.close()
    assert receiver.requests[0].path == "/hook-a1b2c3d4e5/runbook"
    (step,) = [e for e in engine.store.entries() if e.kind == "rollback.step"]
    assert step.data["detail"].startswith(f"no route for POST {secrets.MASK}") and step.data["detail"].endswith(" bytes cut)")
    stored = list(tmp_path.glob("state.sqlite*"))
    assert stored
    for path in stored:
        data = path.read_bytes()
        assert b"hook-a1b2c3d4e5" not in data and b"x" * 1000 not in data, path


async def test_a_run_step_starts_only_once_its_process_group_is_written_down(tmp_path):
    """An engine that dies (here: its journal write fails) between starting a step and recording
    the step's process group must not leave a step running that no later engine knows of."""
    marker = tmp_path / "ran"
    step = RunStep(name="Drain", run=["sh", "-c", f"touch {marker}"], timeout=5)

    gated: list[int] = []

    async def cannot_record(pgid: int) -> None:
        gated.append(pgid)
        raise OSError("database or disk is full")

    with pytest.raises(OSError):
        await run_step(step, {}, started=cannot_record)
    until("the gated step's shell to end", lambda: not running(gated[0]))  # it ended without running the step
    assert not marker.exists()
    recorded: list[int] = []

    async def record(pgid: int) -> None:
        recorded.append(pgid)

    result = await run_step(step, {}, started=record)
    assert result.ok and marker.exists() and recorded
