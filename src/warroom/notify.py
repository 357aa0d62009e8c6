"""Notifications to the war room's channel: Slack-compatible and generic JSON webhooks.

Fed by the engine's entry listeners, so every mode (console, headless, drill, one-shot
verbs) notifies what it commits. Delivery runs in background tasks, one queue per
target: the engine never waits on a webhook, and one dead target does not delay the
others. A failed delivery is journaled and retried with backoff; the URL is a secret
reference, resolved at send time and redacted everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

from . import secrets
from .engine.engine import Engine
from .engine.snapshot import JournalEntry, State
from .plan import NotifyTarget
from .scorecard import why

# What is worth a message: state changes, automatic actions, failed attempts, drift, drills.
EVENTS = {
    "step.outcome", "step.forced", "rollout.complete", "pause", "resume", "retry",
    "rollback.intent", "rollback.confirmed", "rollback.outcome",
    "guardrail.alert", "guardrail.fired",
    "step.attempt", "rollback.attempt",
    "drift.detected", "drift.ack",
    "source.error", "source.recovered",
    "drill.start", "drill.score",
    "rollback.step.failed",  # a failed runbook step (see Notifier.on_entry)
}
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # real seconds: the network does not run on drill time
DRAIN_TIMEOUT = 5.0  # at exit, how long undelivered messages may still take
SEND_TIMEOUT = 5.0


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

    # ------------------------------------------------------------ feeding (never blocks)

    def on_entry(self, entry: JournalEntry) -> None:
        kind = entry.kind
        if kind == "rollback.step" and not entry.data.get("ok", True):
            kind = "rollback.step.failed"  # a failed runbook step is a failed action attempt
        matching = [i for i, t in enumerate(self.targets) if wanted(t, kind)]
        if not matching:
            return
        if not self.workers:
            self._start()
        message = self.message(entry)
        for i in matching:
            self.queues[i].put_nowait(message)

    def _start(self) -> None:
        import httpx  # only when a message is due: it costs start-up time every console pays

        self.client = httpx.AsyncClient(timeout=SEND_TIMEOUT)
        self.queues = [asyncio.Queue() for _ in self.targets]
        self.workers = [asyncio.get_running_loop().create_task(self._work(i)) for i in range(len(self.targets))]

    def message(self, entry: JournalEntry) -> dict[str, Any]:
        """Everything a message needs, taken now: state and phase as of this entry."""
        plan, st = self.engine.plan, self.engine.st
        index = int(st.get("phase", 0))
        return {
            "event": entry.kind,
            "rollout": plan.rollout.name,
            "environment": plan.rollout.environment,
            "phase": {"index": index, "count": len(plan.phases), "name": plan.phases[index - 1].name if index else ""},
            "state": State(st.get("state", "PENDING")).label,
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

    async def _send(self, index: int, message: dict[str, Any]) -> str | None:
        """One attempt; None when delivered, else a short reason that holds no secret."""
        import httpx

        target = self.targets[index]
        try:
            if index not in self.urls:
                # A keyring lookup may wait on a desktop service: never on the engine's loop.
                self.urls[index] = await asyncio.to_thread(secrets.resolve, target.url)
                secrets.remember(self.urls[index])  # the whole URL is the secret for webhooks
            body = self.slack_body(message) if target.type == "slack" else message
            assert self.client is not None
            response = await self.client.post(self.urls[index], json=body)
        except secrets.SecretError as exc:
            return str(exc)
        except httpx.TimeoutException:
            return f"timeout after {SEND_TIMEOUT:g}s"
        except httpx.HTTPError as exc:
            return f"request failed: {type(exc).__name__}"
        return None if response.is_success else f"HTTP {response.status_code}"

    async def _work(self, index: int) -> None:
        target, queue = self.targets[index], self.queues[index]
        name = f"{target.type} notify #{index + 1}"
        while True:
            message = await queue.get()
            try:
                for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
                    error = await self._send(index, message)
                    if error is None:
                        if attempt > 1:
                            self.engine.record("notify.delivered", f"{name}: {message['event']} delivered on attempt {attempt}",
                                               {"target": index, "event": message["event"], "attempt": attempt})
                        break
                    then = f"retrying in {delay:g}s" if delay is not None else "giving up"
                    self.engine.record("notify.failed", f"{name}: {message['event']} not delivered ({error}), attempt {attempt}; {then}",
                                       {"target": index, "event": message["event"], "attempt": attempt, "error": error})
                    if delay is not None:
                        await asyncio.sleep(delay)
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
            self.engine.record("notify.dropped", f"{left} notification(s) not delivered before exit", {"count": left})
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
