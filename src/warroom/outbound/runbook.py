"""Rollback runbook steps: run an argv, call a webhook, make an HTTP request.

Each step reports a short summary for the journal. Output and URLs pass through
redaction, since a webhook URL is itself a secret (and a receiver may quote part of it
back); what a server or command says is kept only in part, redacted before it is cut.
Redirects are not followed: a step's credentials never go to another address.

Every webhook and HTTP step carries an idempotency key (header `Idempotency-Key`, and
`idempotency_key` in a webhook's body): derived from the rollout, the rollback's action
and the step's index, so an engine that re-runs a step its killed predecessor had in
flight sends the same key, and the receiver can tell it is the same step.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from warroom.core import secrets
from warroom.plan.rollback import HttpStep, RunStep, WebhookStep

OUTPUT_LIMIT = 2000  # characters of a command's output kept (its end: where errors are)
IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(rollout: str, action_id: str, index: int) -> str:
    """The same for one step of one rollback on every engine that runs it; header-safe whatever the rollout's name."""
    return "warroom-" + hashlib.sha256(f"{rollout}\n{action_id}\n{index}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    summary: str
    detail: str = ""
    dry_run: bool = False


def step_name(step: RunStep | WebhookStep | HttpStep) -> str:
    if step.name:
        return step.name
    if isinstance(step, RunStep):
        return " ".join(step.run)[:60]
    if isinstance(step, WebhookStep):
        return "webhook"
    return f"{step.http.method} request"


def _format(template: str, context: dict[str, Any]) -> str:
    try:
        return template.format(**context)
    except (KeyError, IndexError, ValueError):
        return template


def _fill(value: Any, context: dict[str, Any]) -> Any:
    """Fill {rollout}, {phase}, {reason}… into every string of a request body."""
    if isinstance(value, str):
        return _format(value, context)
    if isinstance(value, dict):
        return {k: _fill(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, context) for v in value]
    return value


def stop_group(pgid: int) -> bool:
    """Kill a step's whole process group (the command and what it started); False when none is left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# The step waits at this gate until its engine has written down its process group (`started`
# is awaited: the record committed, not just handed to the store): an engine killed between
# starting a step and recording it would otherwise leave a step no later engine knows of, and
# the step would run twice at once. With no word (the engine died or was fenced first) the
# step never starts.
GATE = 'read -r _ || exit 97; exec "$@" </dev/null'  # the gate is its stdin; the step's is /dev/null


async def _run(step: RunStep, started: Callable[[int], Awaitable[None]]) -> StepResult:
    name = step_name(step)
    if shutil.which(step.run[0]) is None:
        return StepResult(name, False, f"command not found: {step.run[0]}")
    gate_read, gate_write = os.pipe()
    try:
        # A session of its own: the step and everything it starts (a shell's children) go down
        # together when it times out or its engine stops, instead of running on unwatched.
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", GATE, "warroom-step", *step.run, stdin=gate_read,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
    except OSError as exc:
        os.close(gate_write)
        return StepResult(name, False, f"cannot start {step.run[0]}: {exc.strerror}")
    finally:
        os.close(gate_read)
    try:
        await started(proc.pid)
        os.write(gate_write, b"go\n")
    finally:
        os.close(gate_write)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=step.timeout)
    except TimeoutError:
        stop_group(proc.pid)
        await proc.wait()
        return StepResult(name, False, f"timed out after {step.timeout:g}s and was killed")
    except asyncio.CancelledError:
        stop_group(proc.pid)
        raise
    # Redacted whole before the cut, so a cut never leaves part of a secret behind.
    text = secrets.redact(out.decode("utf-8", "replace"))[-OUTPUT_LIMIT:].strip()
    if proc.returncode == 0:
        return StepResult(name, True, "ok", text)
    return StepResult(name, False, f"exit status {proc.returncode}" + (f": {text.splitlines()[-1]}" if text else ""), text)


async def _post(name: str, method: str, url: str, headers: dict[str, str], body: Any, timeout: float, expect: list[int]) -> StepResult:
    import httpx  # only when a runbook step calls out: it costs start-up time every console pays

    from warroom.outbound import http as outbound

    try:
        async with outbound.client(timeout) as client:
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["content" if isinstance(body, str) else "json"] = body
            response = await outbound.request(client, method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        return StepResult(name, False, f"timeout after {timeout:g}s")
    except httpx.HTTPError as exc:
        return StepResult(name, False, secrets.redact(f"request failed: {type(exc).__name__}"))
    detail = secrets.excerpt(response.text)
    if not (expect and response.status_code in expect) and (redirect := outbound.redirect_reason(response)):
        return StepResult(name, False, redirect, detail)
    ok = response.status_code in expect if expect else response.is_success
    return StepResult(name, ok, f"HTTP {response.status_code}", detail)


async def _nobody_records(_pgid: int) -> None:
    """A step run outside an engine (a test, a drill): no later engine will look for its process group."""


async def run_step(step: RunStep | WebhookStep | HttpStep, context: dict[str, Any], *, dry_run: bool = False,
                   started: Callable[[int], Awaitable[None]] = _nobody_records, key: str = "") -> StepResult:
    """Run one runbook step; `started` is told the process group of a `run` step as it starts, and
    the step waits for it to return; `key` is its idempotency key (see the module text), sent with a
    webhook or HTTP step."""
    name = step_name(step)
    if dry_run:
        # Its target, not its name again: the command, the request, or the webhook (its reference, never its URL).
        if isinstance(step, RunStep):
            what = "run " + " ".join(step.run)
        elif isinstance(step, WebhookStep):
            what = f"post to the webhook {step.webhook}"
        else:
            what = f"call {step.http.method} {step.http.url}"
        return StepResult(name, True, secrets.redact(f"dry run: would {what}"), dry_run=True)
    try:
        if isinstance(step, RunStep):
            return await _run(step, started)
        keyed = {IDEMPOTENCY_HEADER: key} if key else {}
        if isinstance(step, WebhookStep):
            url = secrets.resolve(step.webhook)
            secrets.remember_url(url)  # the whole URL is the secret, and each distinctive part of it
            body: Any = {"text": _format(step.message, context), **({"idempotency_key": key} if key else {})}
            return await _post(name, "POST", url, keyed, body, 10.0, [])
        req = step.http
        body = _fill(req.body, {**context, "idempotency_key": key})
        return await _post(name, req.method, req.url, {**secrets.resolve_headers(req.headers), **keyed}, body, req.timeout, req.expect_status)
    except secrets.SecretError as exc:
        return StepResult(name, False, str(exc))
