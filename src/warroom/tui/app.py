"""The war-room console: renders the snapshots the rollout's engine publishes, sends commands.

The console is a client (client.py): it never builds an engine, never asks a source,
never writes a flag. A worker thread waits on the store for changes and posts the newest
snapshot as a message (coalesced: only the newest matters); a key press queues a command
in the store, and its outcome comes back as a CommandDone message. With no engine alive
the screen says so, loudly: nothing enforces the guardrails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import signal
import subprocess
import sys
import threading

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen

from ..client import EngineClient, Started, engine_argv, start_engine
from ..identity import current_actor
from ..paths import engine_log_path, state_path
from ..plan import Plan
from ..scorecard import ScoreCard
from ..secrets import redact
from ..snapshot import Snapshot, State
from ..store import open_store
from ..store.base import Command, StoreUnwritable
from .commands import PaletteCommand, WarroomCommands
from .screens.force_reason import ForceReason
from .screens.help import HelpRow, HelpScreen
from .screens.quit_confirm import QuitConfirm
from .screens.score_card import ScoreCardScreen
from .screens.step_dialog import FORCE, STEP, StepDialog
from .themes import DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes
from .widgets.banner import Banner
from .widgets.checklist import Checklist
from .widgets.flags_table import FlagsTable
from .widgets.keys_bar import KeyHint, KeysBar
from .widgets.panes_grid import PanesGrid
from .widgets.status_line import StatusLine
from .widgets.timeline import Timeline

BUSY = (State.ROLLING_BACK, State.ROLLED_BACK)
LEAVE_GRACE = 2.0  # seconds Textual's teardown gets before the process ends regardless


def terminal_gone(fd: int) -> bool:
    """True once the terminal behind `fd` has hung up or closed.

    An SSH drop usually sends SIGHUP, but not always (a process in another session, a
    terminal that just closes): then reads return nothing at once and Textual's input
    thread spins on them, so the console must notice by itself and leave.
    """
    poller = select.poll()
    poller.register(fd, 0)  # hang-up and error are reported whatever the mask asks for
    return any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, events in poller.poll(0))


class SnapshotArrived(Message):
    """The engine published (or its liveness changed); the newest snapshot waits in WarroomApp._latest."""


class CommandDone(Message):
    def __init__(self, label: str, command: Command | None, error: str = "") -> None:
        super().__init__()
        self.label = label
        self.command = command  # None: it could not be sent (`error` says why)
        self.error = error


def _breakpoint(size: int, breakpoints: list[tuple[int, str]]) -> str | None:
    """The class Textual's Screen gives this size: the largest breakpoint it reaches."""
    return next((name for at, name in sorted(breakpoints, reverse=True) if size >= at), None)


class WarroomApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "warroom"
    COMMANDS = App.COMMANDS | {WarroomCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall"), (55, "-huge")]
    # Every binding has an id so a plan's `keys:` can remap it (App.set_keymap).
    BINDINGS = [
        Binding("s", "step_up", "Step up to the next phase (confirm dialog; forced needs a reason)", id="step_up"),
        Binding("p", "pause_resume", "Pause / resume automation and step-ups", id="pause_resume"),
        Binding("R", "rollback", "Roll back NOW (no dialog; journaled)", id="rollback"),
        Binding("a", "ack_drift", "Acknowledge flag drift (accept observed flags)", id="ack_drift"),
        Binding("question_mark", "help", "Help: every key", id="help"),
        Binding("colon", "command_palette", "Command palette: every action by name", id="palette"),
        Binding("t", "cycle_theme", "Cycle themes", id="theme"),
        Binding("q", "quit_console", "Quit (asks while a rollback is in flight)", id="quit"),
    ]

    # repaint=False: the bound widgets repaint what changed; an App repaint redraws the whole screen.
    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    rollback_requested: reactive[bool] = reactive(False)

    def __init__(
        self,
        client: EngineClient,
        *,
        theme: str | None = None,
        keys: dict[str, str] | None = None,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.client = client
        self.actor = client.actor
        self.wanted_theme = theme
        self.keys = dict(keys or {})
        self.handle_signals = handle_signals
        self.theme_names: list[str] = []
        self._latest: Snapshot | None = None
        self._lock = threading.Lock()
        # The watcher may read a snapshot before the screen is up; its message waits until on_mount.
        self._mounted = False
        self._held: list[Message] = []
        self._unwatch = threading.Event()
        self._screen_loop: asyncio.AbstractEventLoop | None = None  # the screen's, once mounted
        # A drill's score card: shown once when it is journaled while this console is open.
        self.score_card: ScoreCard | None = None
        self._score_seq: int | None = None
        # Themes before the screen: picking one after mount re-parses and re-applies all
        # CSS (≈ 120 ms of start-up here); before, the first styling already uses it.
        self._theme_problems = self._load_themes()

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Banner().data_bind(WarroomApp.snapshot, WarroomApp.rollback_requested)
        yield PanesGrid().data_bind(WarroomApp.snapshot)
        with Horizontal(id="middle"):
            yield Checklist().data_bind(WarroomApp.snapshot)
            yield FlagsTable().data_bind(WarroomApp.snapshot)
        yield Timeline().data_bind(WarroomApp.snapshot)
        yield StatusLine().data_bind(WarroomApp.snapshot)
        yield KeysBar()

    def get_default_screen(self) -> Screen:
        # Born with the breakpoint classes of the terminal's size: the first resize would
        # otherwise add them and restyle every widget once more before the first frame.
        width, height = self.size
        classes = [_breakpoint(width, self.HORIZONTAL_BREAKPOINTS), _breakpoint(height, self.VERTICAL_BREAKPOINTS)]
        return Screen(id="_default", classes=" ".join(c for c in classes if c))

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return VARIABLE_DEFAULTS

    def on_mount(self) -> None:
        for problem in self._theme_problems:
            self.notify(problem, title="theme", severity="warning")
        self._apply_keymap()
        if self.handle_signals:
            # Losing SSH sends SIGHUP: leave cleanly (the engine is another process: it keeps guarding).
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(sig, self.leave, 128 + sig)
            self.set_interval(0.5, self._leave_if_terminal_gone)
        self.query_one(Checklist).focus()
        self._refresh_keys()
        self._screen_loop = asyncio.get_running_loop()
        with self._lock:
            self._mounted = True
            held, self._held = self._held, []
        for message in held:
            self.post_message(message)
        threading.Thread(target=self._watch, name="warroom-watch", daemon=True).start()

    def on_unmount(self) -> None:
        self._unwatch.set()  # the watcher thread ends with the screen

    def _leave_if_terminal_gone(self) -> None:
        if terminal_gone(sys.__stdin__.fileno()):
            self.leave(128 + signal.SIGHUP)

    def leave(self, code: int) -> None:
        """The terminal is gone, or the process was told to stop: exit, and be sure of it.

        Textual's teardown writes to the terminal. Once the terminal is gone its writer
        thread has died on EIO, and the teardown can then block for ever. So after a grace
        period the process ends regardless (the engine is another process: it goes on guarding).
        """
        self.exit(code)
        watchdog = threading.Timer(LEAVE_GRACE, self._end_process, args=(code,))
        watchdog.daemon = True
        watchdog.start()

    def _end_process(self, code: int) -> None:
        os._exit(code)

    def _load_themes(self) -> list[str]:
        """Register the theme files and pick the wanted theme; the problems, to show on mount."""
        themes, problems = load_themes()
        for theme in themes:
            self.register_theme(theme)
        self.theme_names = [t.name for t in themes]
        problems = [f"theme skipped: {problem}" for problem in problems]
        wanted = self.wanted_theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            if self.wanted_theme:
                problems.append(f"unknown theme {wanted!r}; themes: {', '.join(self.theme_names)}")
            wanted = DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
            # The stylesheet took its variables from Textual's default theme in App.__init__.
            self.stylesheet.set_variables(self.get_css_variables())
        return problems

    def _binding_ids(self) -> dict[str, Binding]:
        return {b.id: b for b in [*self.BINDINGS, *Checklist.BINDINGS] if isinstance(b, Binding) and b.id}

    def _apply_keymap(self) -> None:
        known = self._binding_ids()
        unknown = sorted(set(self.keys) - set(known))
        if unknown:
            self.notify(f"keys: unknown binding id(s) {', '.join(unknown)}; known: {', '.join(known)}",
                        title="plan keys", severity="warning", timeout=10)
        self.set_keymap({k: v for k, v in self.keys.items() if k in known})

    def key_for(self, binding_id: str, *, first: bool = False) -> str:
        """The key(s) as shown to the user, after the plan's remapping."""
        binding = self._binding_ids()[binding_id]
        keys = [k.strip() for k in self.keys.get(binding_id, binding.key).split(",")]
        return "/".join(self.get_key_display(Binding(k, "")) for k in (keys[:1] if first else keys))

    # ------------------------------------------------------------ store → screen

    def _to_app(self, message: Message) -> None:
        """Worker thread: post now if the screen is up, else hold it for on_mount."""
        with self._lock:
            if not self._mounted:
                self._held.append(message)
                return
        try:
            self._screen_loop.call_soon_threadsafe(self.post_message, message)  # type: ignore[union-attr]
        except RuntimeError:  # the app's loop has closed: nobody left to show it to
            pass

    def show(self, snap: Snapshot) -> None:
        """Any thread: the newest snapshot to show; at most one message waits for the screen."""
        with self._lock:
            waiting = self._latest is not None
            self._latest = snap
        if not waiting:
            self._to_app(SnapshotArrived())

    def _watch(self) -> None:
        """Worker thread: wait on the store; on a change read the snapshot, and every second look
        whether the engine is still alive (an engine that died publishes nothing more)."""
        waiter = self.client.watch()
        last: Snapshot | None = None
        cut_off = False  # the store could not be read (a database away): said once, tried again every second
        try:
            while not self._unwatch.is_set():
                try:
                    changed = waiter.wait(1.0) and self.client.news() or last is None or cut_off
                    if changed:
                        last = self.client.snapshot() or last
                        if last is not None:
                            self.show(last)
                    elif last is not None:
                        seen = self.client.viewed(last)
                        if seen.automation != last.automation:  # the engine died (or came back) with nothing new published
                            last = seen
                            self.show(last)
                    if cut_off:
                        self.call_from_thread(self.notify, "the rollout's store answers again", timeout=10)
                    cut_off = False
                except StoreUnwritable as exc:  # a network store's connection is gone: it reconnects on the next call
                    if not cut_off:
                        self.call_from_thread(self.notify, redact(f"cannot reach the rollout's store: {exc}; trying again"),
                                              severity="error", timeout=30)
                    cut_off = True
                    self._unwatch.wait(1.0)
        except Exception as exc:  # the store went away under us: say so on the screen rather than die silently
            if not self._unwatch.is_set():
                self.call_from_thread(self.notify, redact(f"cannot read the rollout any more: {exc}"), severity="error", timeout=30)
        finally:
            waiter.close()

    def on_snapshot_arrived(self, _: SnapshotArrived) -> None:
        with self._lock:
            snap, self._latest = self._latest, None
        if snap is None:
            return
        self.snapshot = snap
        if snap.state in BUSY:
            self.rollback_requested = False
        for screen in self.screen_stack:
            if isinstance(screen, StepDialog):
                screen.show(snap)
        self._refresh_keys()
        self._show_new_score_card(snap)

    def _show_new_score_card(self, snap: Snapshot) -> None:
        scores = [e for e in snap.journal if e.kind == "drill.score"]  # newest first
        newest = scores[0].seq if scores else 0
        if self._score_seq is None:
            # A card already in the journal when the console opened is not news (a past drill).
            self._score_seq = newest
            self.score_card = ScoreCard.from_json(scores[0].data["card"]) if scores else None
            return
        if newest > self._score_seq:
            self._score_seq = newest
            self.score_card = ScoreCard.from_json(scores[0].data["card"])
            self.push_screen(ScoreCardScreen(self.score_card))

    def action_score_card(self) -> None:
        if self.score_card is None:
            self.notify("no drill has been scored in this journal yet", severity="warning")
        else:
            self.push_screen(ScoreCardScreen(self.score_card))

    # ------------------------------------------------------------ screen → engine

    def submit(self, label: str, verb: str, args: dict | None = None) -> None:
        """Queue a command for the engine; its outcome comes back as CommandDone (a worker waits for it)."""
        if self.snapshot is not None and self.snapshot.readonly:
            self.notify("read-only console: no action possible", title=f"{label}: refused", severity="error")
            return

        def send_and_wait() -> None:
            try:
                command = self.client.wait(self.client.send(verb, args or {}))
            except Exception as exc:  # the store refused the command (a full disk): say it, never crash the screen
                self._to_app(CommandDone(label, None, redact(str(exc))))
                return
            self._to_app(CommandDone(label, command))

        threading.Thread(target=send_and_wait, name=f"warroom-{verb}", daemon=True).start()

    def on_command_done(self, message: CommandDone) -> None:
        command = message.command
        if message.label == "roll back":
            self.rollback_requested = False
        if command is None:
            self.notify(message.error, title=f"{message.label} not sent", severity="error", timeout=10)
        elif not command.done:
            self.notify(f"no answer: the engine stopped before it ran this ({command.status})", title=message.label,
                        severity="error", timeout=10)
        elif command.status in ("refused", "expired"):
            self.notify(command.message, title=f"{message.label}: refused", severity="error", timeout=8)
        elif command.status == "failed":
            self.notify(command.message, title=f"{message.label} failed", severity="error", timeout=10)
        else:
            self.notify(command.message, title=message.label)

    def action_step_up(self) -> None:
        snap = self.snapshot
        if snap is None:
            self.notify("waiting for the first reading from the engine", severity="warning")
            return
        if snap.readonly or snap.force_blockers:
            # Not even a forced step can go now: let the engine say why (it is the authority).
            self.submit("step up", "step")
            return

        def confirmed(choice: str | None) -> None:
            if choice == STEP:
                self.submit("step up", "step")
            elif choice == FORCE:
                self.push_screen(ForceReason(self.snapshot.step_blockers if self.snapshot else ()), forced)

        def forced(reason: str | None) -> None:
            if reason:
                self.submit("forced step up", "step", {"force": True, "reason": reason})

        self.push_screen(StepDialog(snap), confirmed)

    def action_pause_resume(self) -> None:
        if self.snapshot is not None and self.snapshot.state == State.PAUSED:
            self.submit("resume", "resume")
        else:
            self.submit("pause", "pause")

    def action_rollback(self) -> None:
        snap = self.snapshot
        # Shown at once, before the engine thread answers; the engine's state replaces it.
        self.rollback_requested = not (snap and (snap.readonly or snap.state in BUSY))
        self.submit("roll back", "rollback", {"reason": f"manual rollback from the console by {self.actor.user}"})

    def on_checklist_toggle(self, message: Checklist.Toggle) -> None:
        item = message.item
        self.submit("checklist", "tick", {"item": item.id, "undo": item.ticked})

    def action_ack_drift(self) -> None:
        self.submit("acknowledge drift", "ack")

    def action_retry(self) -> None:
        self.submit("retry", "retry")

    def action_help(self) -> None:
        reasons = {hint.binding_id: hint.reason for hint in self._hints() if hint.reason}
        rows = [HelpRow(self.key_for(bid), bid, b.description, reasons.get(bid, "")) for bid, b in self._binding_ids().items()]
        self.push_screen(HelpScreen(rows))

    def action_cycle_theme(self) -> None:
        if not self.theme_names:
            return
        index = self.theme_names.index(self.theme) + 1 if self.theme in self.theme_names else 0
        self.theme = self.theme_names[index % len(self.theme_names)]
        self.notify(f"theme: {self.theme}")

    def action_quit_console(self) -> None:
        snap = self.snapshot
        in_flight = self.rollback_requested or (snap is not None and (
            snap.state == State.ROLLING_BACK or (snap.action is not None and snap.action.kind == "rollback")))
        if not in_flight:
            self.exit(0)
            return

        def answered(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.exit(0)

        self.push_screen(QuitConfirm(), answered)

    async def action_quit(self) -> None:
        """Textual's own ctrl+q and the palette's "Quit the application" ask too."""
        self.action_quit_console()

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("Step up", "next phase, with the confirmation dialog", self.action_step_up),
            PaletteCommand("Pause / resume", "hold automation and step-ups, or go on", self.action_pause_resume),
            PaletteCommand("Roll back now", "flags to their rollback state, runbook steps after", self.action_rollback),
            PaletteCommand("Tick / untick the selected checklist item", "current phase", self.query_one(Checklist).action_toggle),
            PaletteCommand("Acknowledge flag drift", "accept the observed flag states", self.action_ack_drift),
            PaletteCommand("Retry after a rollback", "leave ROLLED BACK, start again at phase 0", self.action_retry),
            PaletteCommand("Cycle theme", ", ".join(self.theme_names), self.action_cycle_theme),
            PaletteCommand("Help", "every key and its binding id", self.action_help),
            PaletteCommand("Drill score card", "the latest drill's score, from the journal", self.action_score_card),
            PaletteCommand("Quit", "close this console (the rollout goes on)", self.action_quit_console),
        ]

    # ------------------------------------------------------------ footer

    def _hints(self) -> list[KeyHint]:
        def key(binding_id: str) -> str:
            return self.key_for(binding_id, first=True)  # the footer has room for one key each

        snap = self.snapshot
        if snap is None:
            return [KeyHint(key("quit"), "quit", binding_id="quit")]
        ro = "read-only console" if snap.readonly else ""
        paused = snap.state == State.PAUSED
        has_items = bool(snap.phase and snap.phase.checklist)
        return [
            KeyHint(key("step_up"), "step", not ro and not snap.step_blockers,
                    ro or "; ".join(snap.step_blockers), binding_id="step_up"),
            KeyHint(key("pause_resume"), "resume" if paused else "pause",
                    not ro and snap.state in (State.RUNNING, State.PAUSED),
                    ro or ("" if snap.state in (State.RUNNING, State.PAUSED) else f"state is {snap.state.label}"),
                    binding_id="pause_resume"),
            KeyHint(key("rollback"), "ROLLBACK", not ro and snap.state not in BUSY,
                    ro or (f"state is {snap.state.label}" if snap.state in BUSY else ""), loud=True, binding_id="rollback"),
            KeyHint(key("checklist.tick"), "tick", not ro and has_items,
                    ro or ("" if has_items else "no checklist item in this phase"), binding_id="checklist.tick"),
            KeyHint(key("ack_drift"), "ack", not ro and snap.drift,
                    ro or ("" if snap.drift else "no drift"), binding_id="ack_drift"),
            KeyHint(key("help"), "help", binding_id="help"),
            KeyHint(key("quit"), "quit", binding_id="quit"),
            # Last: on a narrow terminal these are the ones cut off.
            KeyHint(key("palette"), "cmds", binding_id="palette"),
            KeyHint(key("theme"), "theme", binding_id="theme"),
        ]

    def _refresh_keys(self) -> None:
        self.query_one(KeysBar).hints = tuple(self._hints())


def run_console(plan: Plan | None, args: argparse.Namespace, engine_args: list[str] | None = None) -> int:
    """`warroom [PLAN]`: open the console on the rollout's engine; returns the process exit code.

    With no engine alive one is started: detached for a plan (it keeps guarding when the
    console closes), as this process's child for the built-in demo and for a drill
    (`engine_args`: the drill's engine), which end with the console.
    """
    from ..demo import DEMO_NAME, demo_plan

    if plan is None:
        plan = demo_plan()
    path = state_path(plan, getattr(args, "state", None))
    readonly = bool(getattr(args, "readonly", False))
    demo = str(plan.path) == DEMO_NAME
    client = EngineClient(open_store(path), actor=current_actor(), readonly=readonly)
    child: Started | None = None
    if engine_args is not None or demo:
        child = start_engine(engine_args or engine_argv(plan, path, speed=getattr(args, "speed", None)), engine_log_path(path), detached=False)
    elif not readonly and not client.engine(plan.poll_interval).alive:
        started = start_engine(engine_argv(plan, path, speed=getattr(args, "speed", None)), engine_log_path(path), detached=True)
        if client.wait_for_engine(lambda: started.process.poll() is not None) is None:
            print(f"warroom: the engine did not start; see its log: {started.log}", file=sys.stderr)
            return 1
    if child is not None and client.wait_for_engine(lambda: child.process.poll() is not None) is None:
        print(f"warroom: the engine did not start; see its log: {child.log}", file=sys.stderr)
        _stop_child(child)
        return 1
    app = WarroomApp(client, theme=getattr(args, "theme", None) or plan.theme, keys=plan.keys, handle_signals=True)
    first = client.snapshot()
    if first is not None:
        app.show(first)  # the first frame has data: no empty screen while the watcher starts
    try:
        # Mouse off: over SSH, native text selection (copying a journal line) matters more.
        code = app.run(mouse=False)
    finally:
        if child is not None:
            _stop_child(child)  # the demo's (or the drill's) engine ends with the console
    if demo:
        # The built-in demo lives in a fresh temporary folder: say where, or its journal is lost.
        print(f"warroom: the demo's journal: warroom journal --state {path}", file=sys.stderr)
    elif child is None:
        _say_who_guards(client, plan)
    return code or 0


def _stop_child(child: Started) -> None:
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(10)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _say_who_guards(client: EngineClient, plan: Plan) -> None:
    """On leaving while the rollout is in flight: the guardrails stay enforced, and by whom."""
    snap = client.snapshot()
    engine = client.engine(plan.poll_interval)
    if snap is None or snap.state not in (State.RUNNING, State.PAUSED, State.ROLLING_BACK):
        return
    if engine.alive:
        print(f"warroom: guardrails stay enforced by the engine, {engine.label()} (log {engine.log}); "
              f"stop it with: warroom down {plan.path}", file=sys.stderr)
    else:
        print(f"warroom: NO ENGINE — the rollout is {snap.state.label} and nothing enforces its guardrails; "
              f"start one with: warroom up {plan.path}", file=sys.stderr)
