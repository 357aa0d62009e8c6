"""Notifications to the war room's channel: Slack-compatible and generic JSON webhooks.

Fed by the engine's entry listeners, so every mode (console, headless, drill, one-shot
verbs) notifies what it commits. Delivery runs in background tasks, one queue per
target: the engine never waits on a webhook, and one dead target does not delay the
others. A failed delivery is journaled and retried with backoff (honouring a 429's
Retry-After); the URL is a secret reference, resolved at send time and redacted
everywhere, each distinctive part of it too.

A flag outage makes the engine journal every failed write attempt; the channel gets
the first failure of an action and then one message when that action ends (confirmed
or given up), saying how many attempts failed — not one message per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from warroom.engine.engine import Engine  # the engine feeds its notifier; the notifier never reaches into the engine package

from warroom.core import secrets
from warroom.core.clock import RealClock
from warroom.core.journal_kinds import ROLLBACK_STEP_FAILED, Kind
from warroom.core.snapshot import JournalEntry, why
from warroom.outbound.retry import Backoff, Failure, attempt_until
from warroom.plan.rollback import NotifyTarget

log = logging.getLogger(__name__)

# What is worth a message (journal_kinds.Kind.notifies), and a failed runbook step (see Notifier.on_entry).
EVENTS = {k.value for k in Kind if k.notifies} | {ROLLBACK_STEP_FAILED}
# Waits 0.5, 1, 2, 4, 8 s between six attempts. Real seconds (RealClock): the network
# does not run on drill time, and a notifier must never move a drill's virtual clock.
BACKOFF = Backoff(initial=0.5, cap=8.0)
ATTEMPTS = 6
DRAIN_TIMEOUT = 5.0  # at exit, how long undelivered messages may still take
SEND_TIMEOUT = 5.0  # a whole delivery attempt
# Journaled once per failed attempt of an action; coalesced per action (see Notifier.on_entry).
ATTEMPT_KINDS = (Kind.STEP_ATTEMPT, Kind.ROLLBACK_ATTEMPT)


@dataclass
class _Failing:
    """An action whose failed attempts are being coalesced: one message now, one at its end."""

    failures: int
    told: frozenset[int]  # targets that got the first failure


class _Undelivered(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def wanted(target: NotifyTarget, kind: str) -> bool:
    """A target's `events` list narrows EVENTS by kind (`rollback.intent`) or family (`rollback`)."""
    if kind not in EVENTS:
        return False
    return target.events is None or kind in target.events or kind.partition(".")[0] in target.events


class Notifier:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.targets = list(engine.plan.notify)
        self.queues: list[asyncio.Queue[dict[str, Any]]] = []
        self.workers: list[asyncio.Task] = []
        self.client: httpx.AsyncClient | None = None
        self.urls: dict[int, str] = {}
        self.failing: dict[str, _Failing] = {}  # action id -> its coalesced failed attempts

    # ------------------------------------------------------------ feeding (never blocks)

    def on_entry(self, entry: JournalEntry) -> None:
        kind = entry.kind
        if kind == Kind.ROLLBACK_STEP and not entry.data.get("ok", True):
            kind = ROLLBACK_STEP_FAILED  # a failed runbook step is a failed action attempt
        matching = [i for i, t in enumerate(self.targets) if wanted(t, kind)]
        note = ""
        key = entry.action_id or kind
        if kind in ATTEMPT_KINDS and not entry.data.get("confirmed_by_read"):
            failing = self.failing.get(key)
            if failing is not None:
                failing.failures += 1
                return  # told already; the action's end says how many attempts failed
            self.failing[key] = _Failing(1, frozenset(matching))
            note = "further failed attempts are not sent one by one; a message follows when this ends"
        elif key in self.failing:
            # The action's next word (confirmed, given up, or a read-back that confirms it)
            # ends the outage for those who heard of it, even if they do not follow this kind.
            failing = self.failing.pop(key)
            matching = sorted(set(matching) | failing.told)
            note = f"after {failing.failures} failed attempt{'s' if failing.failures != 1 else ''}"
        if not matching:
            return
        if not self.workers:
            self._start()
        message = self.message(entry)
        if note:
            message["message"] = f"{message['message']} ({note})"
        for i in matching:
            self.queues[i].put_nowait(message)

    def _start(self) -> None:
        from warroom.outbound import http as outbound  # only when a message is due: httpx costs start-up time every console pays

        self.client = outbound.client(SEND_TIMEOUT)
        self.queues = [asyncio.Queue() for _ in self.targets]
        self.workers = [asyncio.get_running_loop().create_task(self._work(i)) for i in range(len(self.targets))]

    def message(self, entry: JournalEntry) -> dict[str, Any]:
        """Everything a message needs, taken now: state and phase as of this entry."""
        plan, now = self.engine.plan, self.engine.rollout
        index = now.phase
        return {
            "event": entry.kind,
            "rollout": plan.rollout.name,
            "environment": plan.rollout.environment,
            "phase": {"index": index, "count": len(plan.phases), "name": plan.phases[index - 1].name if index else ""},
            "state": now.status.label,
            "message": entry.message,
            "why": why(entry),
            "actor": entry.actor,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.ts)),
            "ts": entry.ts,
            "data": {k: v for k, v in entry.data.items() if k != "actor"},
        }

    # ------------------------------------------------------------ delivery

    @staticmethod
    def slack_body(m: dict[str, Any]) -> dict[str, Any]:
        phase = f"phase {m['phase']['index']}/{m['phase']['count']} {m['phase']['name']}".rstrip()
        head = f"[{m['environment'].upper()}] {m['rollout']} · {phase} · {m['state']}"
        text = f"{head}\n{m['message']}" + (f"\nwhy: {m['why']}" if m["why"] else "")
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*\n{m['message']}"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{m['event']} · by {m['actor']} · {m['at']}" + (f" · {m['why']}" if m["why"] else "")}]},
            ],
        }

    async def _send(self, index: int, message: dict[str, Any]) -> None:
        """One attempt; raises _Undelivered with a short reason that holds no secret."""
        import httpx

        from warroom.outbound import http as outbound

        target = self.targets[index]
        try:
            if index not in self.urls:
                # A keyring lookup may wait on a desktop service: never on the engine's loop.
                self.urls[index] = await asyncio.to_thread(secrets.resolve, target.url)
                secrets.remember_url(self.urls[index])  # the whole URL is the secret, and each distinctive part
            body = self.slack_body(message) if target.type == "slack" else message
            assert self.client is not None
            response = await outbound.request(self.client, "POST", self.urls[index], json=body, timeout=SEND_TIMEOUT)
        except secrets.SecretError as exc:
            raise _Undelivered(str(exc)) from None
        except httpx.TimeoutException:
            raise _Undelivered(f"timeout after {SEND_TIMEOUT:g}s") from None
        except httpx.InvalidURL:
            raise _Undelivered("the URL is not a valid http(s) URL") from None
        except httpx.HTTPError as exc:
            raise _Undelivered(f"request failed: {type(exc).__name__}") from None
        if not response.is_success:
            reason = outbound.redirect_reason(response) or f"HTTP {response.status_code}"
            raise _Undelivered(reason, outbound.retry_after(response) if response.status_code in (429, 503) else None)

    async def _deliver(self, index: int, message: dict[str, Any]) -> None:
        """Send with retries; every failed attempt journaled (never the URL), a late success too."""
        name = f"{self.targets[index].type} notify #{index + 1}"
        event = message["event"]

        def failed(failure: Failure) -> None:
            assert isinstance(failure.error, _Undelivered)
            then = f"retrying in {failure.delay:g}s" if failure.delay is not None else "giving up"
            self.engine.record(Kind.NOTIFY_FAILED, f"{name}: {event} not delivered ({failure.error.reason}), attempt {failure.attempt}; {then}",
                               {"target": index, "event": event, "attempt": failure.attempt, "error": failure.error.reason})

        async def attempt(number: int) -> int:
            await self._send(index, message)
            return number

        try:
            number = await attempt_until(attempt, clock=RealClock(), backoff=BACKOFF, attempts=ATTEMPTS,
                                         retry_on=_Undelivered, on_failure=failed)
        except _Undelivered:
            return  # journaled as given up
        if number > 1:
            self.engine.record(Kind.NOTIFY_DELIVERED, f"{name}: {event} delivered on attempt {number}",
                               {"target": index, "event": event, "attempt": number})

    async def _work(self, index: int) -> None:
        queue = self.queues[index]
        while True:
            message = await queue.get()
            try:
                await self._deliver(index, message)
            except Exception as exc:  # a bug must not silence this target for the rest of the launch
                log.error("notify target #%d: %s not delivered: %s", index + 1, message["event"],
                          secrets.redact(f"{type(exc).__name__}: {exc}"))
            finally:
                queue.task_done()

    async def close(self) -> None:
        """Give queued messages a bounded time to go out, then stop; what is left is journaled."""
        if not self.workers:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in self.queues)), DRAIN_TIMEOUT)
        for worker in self.workers:
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        left = sum(q.qsize() for q in self.queues)
        if left:
            self.engine.record(Kind.NOTIFY_DROPPED, f"{left} notification(s) not delivered before exit", {"count": left})
        if self.client is not None:
            await self.client.aclose()


def attach(engine: Engine) -> Notifier | None:
    """Notify the plan's targets of what this engine commits (nothing when the plan has none)."""
    if not engine.plan.notify:
        return None
    notifier = Notifier(engine)
    engine.entry_listeners.append(notifier.on_entry)
    engine.close_hooks.append(notifier.close)
    return notifier
