"""The war-room console: renders the snapshots the rollout's engine publishes, sends commands.

The console is a client (client.py): it never builds an engine, never asks a source,
never writes a flag. A worker thread waits on the store for changes and posts the newest
snapshot as a message (coalesced: only the newest matters; watching.py); every command the
console sends goes through `send` (acting.py, with the keys that send them), which queues it
in the store and waits for its outcome in a worker. The state the widgets bind to is in
console_state.py. With no engine alive the screen says so, loudly: nothing enforces the guardrails.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen

from warroom.client import EngineClient
from warroom.core.snapshot import Snapshot
from warroom.core.text import terminal_safe
from warroom.tui import clock_text
from warroom.tui.acting import CommandActions
from warroom.tui.clock_text import clock_rate, engine_now
from warroom.tui.keymap import ACTIONS, BY_ID, ConsoleAction, availability, bindings
from warroom.tui.palette import WarroomCommands
from warroom.tui.safe_text import SnapshotCleaner
from warroom.tui.sending import Sending
from warroom.tui.themes import DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes, theme_problem
from warroom.tui.watching import SnapshotArrived, StoreWatch
from warroom.tui.widgets.banner import Banner
from warroom.tui.widgets.checklist import Checklist
from warroom.tui.widgets.keys_bar import KeyHint, KeysBar
from warroom.tui.widgets.lower_area import LowerArea
from warroom.tui.widgets.metric_pane import MetricPane, alarm_rank
from warroom.tui.widgets.notice_bar import Notice, NoticeBar
from warroom.tui.widgets.panes_grid import PanesGrid
from warroom.tui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from warroom.reports.scorecard import ScoreCard

# Dialogs and screens are imported when first opened (`from warroom.tui.screens… import` in the
# action): the first frame, which a console opened in a hurry waits for, never pays for them.

T = TypeVar("T")
LEAVE_GRACE = 2.0  # seconds Textual's teardown gets before the process ends regardless
NOTICE_SECONDS = {"information": 5.0, "warning": 8.0, "error": 10.0}


def terminal_gone(fd: int) -> bool:
    """True once the terminal behind `fd` has hung up or closed.

    An SSH drop usually sends SIGHUP, but not always (a process in another session, a
    terminal that just closes): then reads return nothing at once and Textual's input
    thread spins on them, so the console must notice by itself and leave.
    """
    poller = select.poll()
    poller.register(fd, 0)  # hang-up and error are reported whatever the mask asks for
    return any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, events in poller.poll(0))


def _breakpoint(size: int, breakpoints: list[tuple[int, str]]) -> str | None:
    """The class Textual's Screen gives this size: the largest breakpoint it reaches."""
    return next((name for at, name in sorted(breakpoints, reverse=True) if size >= at), None)


class ConsoleScreen(Screen[None]):
    AUTO_FOCUS = "Checklist"  # focused as the screen is built: focusing it after restyles the screen once more


class WarroomApp(CommandActions):
    CSS_PATH = "app.tcss"
    TITLE = "warroom"
    COMMANDS = {WarroomCommands}  # warroom's actions only: no Textual theme picker, screenshots, …
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide"), (160, "-three")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall"), (55, "-huge")]
    # From the one table of console actions; every binding has an id so a plan's `keys:`
    # can remap it (App.set_keymap).
    BINDINGS = bindings("app")

    def __init__(
        self,
        client: EngineClient,
        *,
        theme: str | None = None,
        keys: dict[str, str] | None = None,
        handle_signals: bool = False,
        engine_ends_with_console: bool = False,
        start_engine: Callable[[int | None], str] | None = None,
        plan_file: str = "PLAN",
    ) -> None:
        super().__init__()
        self.client = client
        self.actor = client.actor
        self.wanted_theme = theme
        self.keys = dict(keys or {})
        self.handle_signals = handle_signals
        # The demo's and a drill's engine are this console's child: quitting stops them.
        self.engine_ends_with_console = engine_ends_with_console
        # With no engine alive, `R` starts one first (as `warroom rollback` does); "" when it did,
        # else why not. None: this console cannot start one (the plan is not at hand).
        self.start_engine = start_engine
        self.plan_file = plan_file  # as the user named it, for the commands a notice suggests
        self.sending = Sending(client, self.notify, self.call_from_thread)
        self.theme_names: list[str] = []
        self.store_watch = StoreWatch(client, self.post_message, lambda message, **notice: self.call_from_thread(self.notify, message, **notice))
        self._clean = SnapshotCleaner()
        self._snapshot_at = self._clock_moved_at = 0.0  # wall times: the newest snapshot, the clock's last move
        # A drill's score card: shown once when it is journaled while this console is open.
        self.score_card: ScoreCard | None = None
        self._score_seq: int | None = None
        self._asked: dict[str, bool] = {}  # checklist items toggled, as asked, until a snapshot shows it
        self._asked_phase: int | None = None
        # Themes before the screen: picking one after mount re-parses and re-applies all
        # CSS (≈ 120 ms of start-up here); before, the first styling already uses it.
        self._theme_problems = self._load_themes()

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # A snapshot read before the screen opened (launch.py) is the first frame's: applied before
        # the widgets are built, they are born with it, panes included, and lay out once.
        first = self.store_watch.take()
        if first is not None:
            self._apply(first)
        yield Banner().data_bind(WarroomApp.snapshot, WarroomApp.now, WarroomApp.rollback_requested, WarroomApp.engine_alive)
        yield PanesGrid(self.snapshot).data_bind(WarroomApp.snapshot, WarroomApp.now)
        yield LowerArea().data_bind(WarroomApp.snapshot, WarroomApp.retry_key)
        yield NoticeBar()
        yield StatusLine().data_bind(WarroomApp.snapshot, WarroomApp.retry_key)
        yield KeysBar()

    def get_default_screen(self) -> Screen:
        # Born with the breakpoint classes of the terminal's size: the first resize would
        # otherwise add them and restyle every widget once more before the first frame.
        width, height = self.size
        classes = [_breakpoint(width, self.HORIZONTAL_BREAKPOINTS), _breakpoint(height, self.VERTICAL_BREAKPOINTS)]
        return ConsoleScreen(id="_default", classes=" ".join(c for c in classes if c))

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
        # The clock moves each second whatever the poll interval (a quarter second's look).
        self.set_interval(0.25, self._second)
        self._refresh_keys()
        # At mount, not after the first refresh: a screen with nothing to repaint never ran that
        # callback, and a console on PostgreSQL showed no snapshot until a key was pressed.
        self.store_watch.start(asyncio.get_running_loop())

    def on_ready(self) -> None:
        # The first frame is on the screen: the collector, held off through start-up (cli/main.py), runs
        # again, over what is made from now on. What start-up made (modules, types, the widgets) lives as
        # long as the console: frozen out of its sight, or its first pass walks all of it while a key waits.
        # Only when it was held off: an app in a process that kept it on (a test) freezes nothing of its host.
        if not gc.isenabled():
            gc.freeze()
            gc.enable()

    def on_unmount(self) -> None:
        self.store_watch.stop()

    def _second(self) -> None:
        """Move the clock when its second has passed, unless a snapshot is due any moment:
        then the snapshot moves it, with everything else, in one frame (half the repaints
        over SSH with a 1 s poll). A late snapshot (a frozen engine) does not hold it back."""
        snap = self.snapshot
        rate = clock_rate(snap) if snap is not None else 0.0
        if snap is None or not rate:  # virtual time moves only when the engine is driven
            return
        now, wall = engine_now(snap), clock_text.wall_clock()
        # Fast time (a rehearsal at 20x) changes its second at every look: once a second is enough.
        if int(now) == int(self.now) or (rate > 1 and wall - self._clock_moved_at < 0.9):
            return
        due = self._snapshot_at + snap.poll_interval / rate
        if snap.automation and 0 <= due - wall < 0.3:
            return
        self._clock_moved_at = wall
        self.now = now

    def _leave_if_terminal_gone(self) -> None:
        if sys.__stdin__ is None or terminal_gone(sys.__stdin__.fileno()):
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
        themes, problems = load_themes(validate=False)  # each is checked when picked: the first frame checks one
        for theme in themes:
            self.register_theme(theme)
        self.theme_names = [t.name for t in themes]
        problems = [f"theme skipped: {problem}" for problem in problems]
        wanted = self.wanted_theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            if self.wanted_theme:
                problems.append(f"unknown theme {wanted!r}; themes: {', '.join(self.theme_names)}")
            wanted = DEFAULT_THEME
        problem = theme_problem(self.available_themes[wanted]) if wanted in self.available_themes else None
        if problem:
            problems.append(f"theme skipped: {problem}")
            self.theme_names.remove(wanted)
            wanted = DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
            # The stylesheet took its variables from Textual's default theme in App.__init__.
            self.stylesheet.set_variables(self.get_css_variables())
        return problems

    def _apply_keymap(self) -> None:
        known = [a.id for a in ACTIONS if a.keys]
        unknown = sorted(set(self.keys) - set(known))
        if unknown:
            self.notify(f"keys: unknown binding id(s) {', '.join(unknown)}; known: {', '.join(known)}",
                        title="plan keys", severity="warning")
        self.set_keymap({k: v for k, v in self.keys.items() if k in known})
        self.retry_key = self.key_for("retry", first=True)

    def key_for(self, binding_id: str, *, first: bool = False) -> str:
        """The key(s) as shown to the user, after the plan's remapping."""
        keys = [k.strip() for k in self.keys.get(binding_id, BY_ID[binding_id].keys).split(",")]
        return "/".join(self.get_key_display(Binding(k, "")) for k in (keys[:1] if first else keys))

    # ------------------------------------------------------------ notices

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """One notice at a time, never markup (a `[PROD]` in a message stays), never over the screen.

        On the console's own screen it takes the notice line above the status line; over
        a dialog it is a toast (the newest only), since the notice line is hidden there.
        """
        timeout = timeout or NOTICE_SECONDS.get(severity, 5.0)
        bars = self.screen.query(NoticeBar) if self.screen is not None and self.screen.is_attached else None
        if bars:
            bars.first().show(Notice(str(message), str(title), severity), timeout)
            return
        self.clear_notifications()
        super().notify(terminal_safe(message), title=terminal_safe(title), severity=severity, timeout=timeout, markup=False)

    # ------------------------------------------------------------ store → screen

    def show(self, snap: Snapshot) -> None:
        """Any thread: the newest snapshot to show (launch.py gives the first frame's before the screen opens)."""
        self.store_watch.show(snap)

    def on_snapshot_arrived(self, _: SnapshotArrived) -> None:
        snap = self.store_watch.take()
        if snap is not None:
            self._apply(snap)

    def _apply(self, snap: Snapshot) -> None:
        snap = self._clean(snap)  # outside text made terminal-safe once, for every widget and dialog
        self._snapshot_at = self._clock_moved_at = clock_text.wall_clock()
        self.engine_alive = snap.automation
        self._forget_answered_toggles(snap)
        self.snapshot = snap
        self.now = engine_now(snap)
        if snap.state.in_rollback:
            self.rollback_requested = False
        self._refresh_keys()
        self._show_new_score_card(snap)

    def _forget_answered_toggles(self, snap: Snapshot) -> None:
        phase = snap.phase.index if snap.phase else None
        if phase != self._asked_phase:
            self._asked, self._asked_phase = {}, phase
        for item in snap.phase.checklist if snap.phase else ():
            if self._asked.get(item.id) == item.ticked:
                del self._asked[item.id]

    def _show_new_score_card(self, snap: Snapshot) -> None:
        scores = [e for e in snap.journal if e.kind == "drill.score"]  # newest first
        newest = scores[0].seq if scores else 0
        if scores:
            from warroom.reports.scorecard import ScoreCard
        if self._score_seq is None:
            # A card already in the journal when the console opened is not news (a past drill).
            self._score_seq = newest
            self.score_card = ScoreCard.from_json(scores[0].data["card"]) if scores else None
            return
        if newest > self._score_seq:
            self._score_seq = newest
            self.score_card = ScoreCard.from_json(scores[0].data["card"])
            from warroom.tui.screens.score_card import ScoreCardScreen

            self.push_screen(ScoreCardScreen(self.score_card))

    # ------------------------------------------------------------ screen → engine

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Over a dialog only the rollback key acts (the safe direction, as a breach would);
        # `s` must not stack a second step dialog, nor `q` quit from under it.
        if isinstance(self.screen, ModalScreen) and action in {a.action for a in ACTIONS if a.scope == "app"}:
            return action == "rollback"
        return True

    def run_console_action(self, action: ConsoleAction) -> None:
        """Run a table action by name (the palette), on the widget that holds its binding."""
        namespace = self.query_one(Checklist) if action.scope == "checklist" else self
        self.run_worker(self.run_action(action.action, namespace), group="palette")

    def action_help(self) -> None:
        from warroom.tui.screens.help import HelpRow, HelpScreen

        rows = []
        for action in ACTIONS:
            if action.keys:
                state = availability(action, self.snapshot)
                note = "" if state.enabled else state.reason
                rows.append(HelpRow(self.key_for(action.id), action.id, action.does, note, action.title))
        self.push_screen(HelpScreen(rows))

    def action_zoom(self) -> None:
        from warroom.tui.screens.zoom import ZoomScreen

        snap = self.snapshot
        if snap is None or not snap.panes:
            return
        focused = self.focused
        if isinstance(focused, MetricPane) and focused.pane is not None:
            pane_id = focused.pane.id
        else:
            pane_id = min(snap.panes, key=alarm_rank).id
        self.push_screen(ZoomScreen(pane_id))

    def on_metric_pane_zoom(self, message: MetricPane.Zoom) -> None:
        from warroom.tui.screens.zoom import ZoomScreen

        self.push_screen(ZoomScreen(message.pane_id))

    def action_score_card(self) -> None:
        if self.score_card is None:
            self.notify("no drill has been scored in this journal yet", severity="warning")
        else:
            from warroom.tui.screens.score_card import ScoreCardScreen

            self.push_screen(ScoreCardScreen(self.score_card))

    def action_cycle_theme(self) -> None:
        index = self.theme_names.index(self.theme) + 1 if self.theme in self.theme_names else 0
        for _ in range(len(self.theme_names)):
            name = self.theme_names[index % len(self.theme_names)]
            problem = theme_problem(self.available_themes[name])
            if problem is None:
                self.theme = name
                self.notify(f"theme: {self.theme}")
                return
            self.theme_names.remove(name)  # a broken theme file: said once, then left out of the cycle
            self.notify(f"theme skipped: {problem}", title="theme", severity="warning")

    def action_quit_console(self) -> None:
        from warroom.tui.screens.confirm import ConfirmDialog

        snap = self.snapshot
        in_flight = self.rollback_requested or (snap is not None and snap.rollback_in_flight)
        # An engine of its own finishes the rollback whatever the consoles do: nothing to ask.
        if not in_flight or not self.engine_ends_with_console:
            self.exit(0)
            return

        def answered(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.exit(0)

        self.push_screen(ConfirmDialog(
            "A rollback is in flight",
            "This console's engine (the demo's or the drill's) ends with it; the rollback is journaled "
            "write-ahead, so the next engine to start finishes it.\n\nQuit anyway?", "Quit anyway", cancel="Stay"), answered)

    async def action_quit(self) -> None:
        """Textual's own ctrl+q asks too."""
        self.action_quit_console()

    # ------------------------------------------------------------ footer

    def _hints(self) -> list[KeyHint]:
        snap = self.snapshot
        hints = [KeyHint("", "READ-ONLY")] if snap is not None and snap.readonly else []
        for action in ACTIONS:
            if not action.hint:
                continue
            state = availability(action, snap)
            if state.shown:
                # The footer has room for one key each; `?` lists them all.
                hints.append(KeyHint(self.key_for(action.id, first=True), state.label or action.hint, state.enabled,
                                     action.loud, action.id))
        return hints

    def _refresh_keys(self) -> None:
        # A snapshot may arrive while the screen is being taken down (quitting): nothing to refresh.
        for bar in self.query(KeysBar):
            bar.hints = tuple(self._hints())
