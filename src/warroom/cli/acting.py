"""The verbs that send a command to the rollout's engine and wait for its outcome: step, pause,
resume, rollback, retry, tick, ack, approve, reject (and update --approve).

A command goes through the store; when the store cannot take it, the verbs of the way back go
to this host's engine over its local socket. A rollback is never given up because the store is
away for a moment: it is sent once it answers (and starts an engine when none drives).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from warroom.client import Asked, EngineClient, ask_locally
from warroom.core.exit_codes import Exit
from warroom.core.identity import current_actor
from warroom.core.local_wire import COMMANDS
from warroom.core.secrets import redact
from warroom.core.snapshot import JournalEntry
from warroom.core.text import terminal_safe
from warroom.core.verbs import Verb
from warroom.store import open_store
from warroom.store.base import StoreMissing, StoreUnwritable, process_started
from warroom.store.paths import state_path

if TYPE_CHECKING:  # the plan's model (pydantic) is imported where a plan is loaded: never by a console attaching
    from warroom.plan.model import Plan

T = TypeVar("T")
LOCAL = {v.value for v in COMMANDS}  # verbs that go to this host's engine over its local socket when the store cannot take them


def _running_for() -> float:
    """Seconds since this process started (since its human pressed Enter), on this host's clock."""
    started = process_started(os.getpid())
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK")) if started is not None else 0.0



def _progress(verb: str) -> Callable[[JournalEntry], None]:
    def say(entry: JournalEntry) -> None:
        print(terminal_safe(f"{verb}: {entry.message}"), file=sys.stderr, flush=True)

    return say


def actor_cmd(name: Verb) -> Callable[[Plan, argparse.Namespace], int]:
    def run(plan: Plan, args: argparse.Namespace) -> int:
        """Send the command to the rollout's engine, tell its progress, print its outcome."""
        path = state_path(plan, args.state)
        me = current_actor()
        args_of: dict[Verb, Callable[[], dict[str, Any]]] = {
            Verb.STEP: lambda: {"force": args.force, "reason": args.reason or "", "from_phase": args.from_phase},
            Verb.PAUSE: lambda: {"reason": args.reason or ""},
            Verb.ROLLBACK: lambda: {"reason": args.reason or f"manual rollback by {me.label()} (CLI)"},
            Verb.TICK: lambda: {"item": args.item, "undo": args.undo},
            Verb.UPDATE: lambda: {"text": getattr(args, "text", "")},
            # The plan this person looked at: an approval binds to it, and the engine refuses one given on another.
            Verb.APPROVE: lambda: {"note": args.note or "", "digest": plan.digest()},
            Verb.REJECT: lambda: {"note": args.note, "digest": plan.digest()},
        }

        def send() -> tuple[EngineClient | None, int | Asked, int] | int:
            """(client, command id or the outcome asked over the local socket, journal position before it), or an exit code."""
            try:
                client = EngineClient(open_store(path, create=name is Verb.ROLLBACK), actor=me)
            except StoreMissing:
                client = None
            except StoreUnwritable as exc:  # a database out of reach: the way back may still reach this host's engine
                asked = ask_locally(str(path), name, args_of.get(name, dict)(), me, str(exc), _sent_locally(name)) if name in LOCAL else None
                if asked is None:
                    raise
                return None, asked, 0
            since = client.store.last_seq() if client is not None else 0
            if name is Verb.ROLLBACK:
                assert client is not None  # a rollback creates the store it needs
                # Queued first, whatever this client thinks of the engine: the driving engine runs it (or this host's
                # engine over its local socket, when the store cannot take it). Only when none drives (on the store's
                # clock) is one started, and it finds the rollback queued: told which one is this person's, it proves the sender.
                rollback = client.send_or_ask(name, args_of[name](), _sent_locally(name))
                if not isinstance(rollback, Asked) and not client.engine(plan.poll_interval).alive:
                    from warroom.cli.lifecycle import start_for_rollback  # only here: a client verb never loads the engine otherwise

                    if not start_for_rollback(plan, path, client, rollback):
                        return Exit.PROBLEM
                return client, rollback, since
            if client is None or not client.engine(plan.poll_interval).alive:
                print(f"warroom: no engine drives {plan.rollout.name}: start one with `warroom up {plan.path}` (or open the console)",
                      file=sys.stderr)
                return Exit.REFUSED
            request = args_of.get(name, dict)()
            if name is Verb.STEP and request["from_phase"] is None:
                # When it was typed, and the phase as it stands now: the engine refuses a step the rollout moved on from.
                request.update(from_phase=client.store.load_state()[1].get("phase", 0), waited=_running_for())
            return client, client.send_or_ask(name, request, _sent_locally(name)), since

        sent = _until_the_store_answers(send) if name is Verb.ROLLBACK else send()
        if isinstance(sent, int):
            return sent
        client, command_id, since = sent
        if isinstance(command_id, Asked):
            command = command_id.command
        else:
            assert client is not None
            command = client.wait(command_id, _progress(name), since=since, on_away=_still_waiting(name))
        if not command.done:
            print(f"warroom: the engine stopped before answering ({name} is {command.status}); see `warroom status {plan.path}`", file=sys.stderr)
            return Exit.PROBLEM
        if command.status != "done":
            print(f"warroom: {terminal_safe(command.message)}", file=sys.stderr)
            return Exit.REFUSED if command.status in ("refused", "expired") else Exit.PROBLEM
        if client is not None and command.action_id and client.store.action_status(command.action_id) == "abandoned":
            # A step up a rollback took over did not step: the state it left, as `status` would say it.
            print(f"warroom: {terminal_safe(command.message)}", file=sys.stderr)
            snap = client.snapshot()
            return (Exit.of_state(snap.state) if snap is not None else Exit.OK) or Exit.REFUSED
        print(terminal_safe(command.message))  # the answer quotes the plan (an item's text) and the user (`--reason`)
        return 0

    return run


def _sent_locally(verb: str) -> Callable[[str], None]:
    def say(why: str) -> None:
        print(terminal_safe(f"{verb}: the store cannot take it ({redact(why)}): sent to the engine over this host's local socket; "
                            "waiting for its outcome"), file=sys.stderr, flush=True)

    return say


def _still_waiting(verb: str) -> Callable[[StoreUnwritable, int], None]:
    """What a verb says while its store cannot be reached after its command went out (a database restarting)."""
    def say(exc: StoreUnwritable, tries: int) -> None:
        if tries == 1 or tries % 10 == 0:
            print(f"{verb}: sent; the store cannot be reached to follow it (try {tries}): {terminal_safe(redact(str(exc)))}; "
                  "the engine goes on, waiting for its answer (Ctrl-C stops waiting, not the command)", file=sys.stderr, flush=True)

    return say


def _until_the_store_answers(send: Callable[[], T]) -> T:
    """A rollback is never given up because its store cannot be reached for a moment (a database
    restarting, a network blip, a full disk): it says so on each try and sends once it can.
    Ctrl-C gives up; other verbs fail at once with the store's message."""
    tries = 0
    while True:
        try:
            return send()
        except StoreUnwritable as exc:
            from warroom.outbound.retry import Backoff  # only once a store cannot be reached: tenacity costs every verb's start-up

            tries += 1
            print(f"rollback: not sent yet (try {tries}): {terminal_safe(redact(str(exc)))}; retrying until the store "
                  "answers (Ctrl-C gives up)", file=sys.stderr, flush=True)
            time.sleep(Backoff(initial=0.25, cap=2.0).delay(tries))  # 0.25 s, 0.5 s … then every 2 s
