"""The banner: which rollout, which environment, where it stands, who drives."""

from __future__ import annotations

import time

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from ...snapshot import Snapshot, State
from ...units import format_duration, plan_duration
from ..refresh import set_text

# Words as well as colours, so NO_COLOR and 16-colour terminals still tell them apart.
ENV_BADGE = {
    "production": " ‼ PRODUCTION ‼ ",
    "staging": " staging ",
    "drill": " ▞▞ DRILL ▞▞ ",
}
STATES = ("pending", "running", "paused", "complete", "rolling-back", "rolled-back", "requested", "no-engine")
NO_ENGINE = "NO ENGINE — guardrails NOT enforced"


def clock_text(ts: float) -> str:
    # UTC: the team on a call shares one clock, and the journal is in UTC too.
    return time.strftime("%H:%M:%SZ", time.gmtime(ts))


def phase_text(snap: Snapshot) -> str:
    """`3/6 Beta 25%`: the phase's exposure is added unless its name already says it."""
    phase = snap.phase
    if phase is None:
        return f"0/{snap.phase_count} not started"
    text = f"{phase.index}/{snap.phase_count} {phase.name}"
    # exposure reads "flag 25%, other 100%": a name like "Beta 25%" already carries a label.
    labels = [part.partition(" ")[2] for part in phase.exposure.split(", ") if part]
    if not labels or any(label in phase.name for label in labels):
        return text
    if len(set(labels)) == 1:
        return f"{text} {labels[0]}"
    return f"{text} · {phase.exposure}"


def timing_text(snap: Snapshot) -> str:
    # Soak only means something while the phase is live (not rolled back or complete).
    if snap.phase is None or snap.state not in (State.RUNNING, State.PAUSED):
        return ""
    text = f"in phase {format_duration(snap.phase.elapsed)}"
    left = f"{format_duration(snap.phase.soak_left)} left" if snap.phase.soak_left > 0 else "done"
    if snap.phase.planned_hold is not None:  # a drill shortened the plan's soak: say so, or 30s reads as the plan's
        return f"{text} · soak {plan_duration(snap.phase.planned_hold)} → {plan_duration(snap.phase.hold)} in this drill, {left}"
    return f"{text} · soak {left}"


def driver_text(snap: Snapshot) -> str:
    engine = snap.engine
    if engine is None or not engine.alive:
        return "engine: NONE"
    if engine.standbys:
        return f"engine: {engine.room()}"
    return f"engine: {engine.holder.rpartition(' pid ')[0] or engine.holder}"  # user@host: a pid tells the room nothing


def engine_alive(snap: Snapshot) -> bool:
    """A snapshot as a client sees it says whether an engine is alive; the engine's own always drives."""
    return snap.engine is None or snap.engine.alive


class Banner(Widget):
    """Two lines that answer: what launch, where, which phase, what state, who drives."""

    # The environment badge sets both its colours (a `reverse` of the environment colour
    # took the banner's background as text: dark red on red, pale on yellow). Under
    # NO_COLOR colours turn grey: a loud badge as grey as its banner is inverted to stand out.
    DEFAULT_CSS = """
    Banner { height: 2; background: $panel; }
    Banner Horizontal { height: 1; }
    Banner Static { width: auto; padding: 0 1; }
    Banner #rollout { width: 1fr; text-style: bold; }
    Banner #phase { text-wrap: nowrap; text-overflow: ellipsis; }
    Banner #driver { width: 1fr; text-align: right; color: $text-muted; }
    Banner.-production { background: $env-production 40%; }
    Banner.-production #env { background: $env-production; color: $env-production-text; text-style: bold; }
    Banner.-staging #env { background: $env-staging; color: $env-staging-text; }
    Banner.-drill #env { background: $env-drill; color: $env-drill-text; text-style: bold; }
    Banner.-production:nocolor:dark #env, Banner.-drill:nocolor:light #env { text-style: bold reverse; }
    Banner #state { text-style: bold reverse; }
    Banner #state.-running, Banner #state.-complete { color: $success; }
    Banner #state.-paused, Banner #state.-pending { color: $warning; }
    Banner #state.-rolling-back, Banner #state.-rolled-back, Banner #state.-requested, Banner #state.-no-engine { color: $error; }
    Banner #mode.-ro { color: $warning; text-style: bold reverse; }
    Banner #insecure { color: $error; text-style: bold reverse; display: none; }
    Banner.-insecure #insecure { display: block; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)  # parts update themselves
    rollback_requested: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(id="env", markup=False)
            yield Static(id="rollout", markup=False)
            yield Static(" INSECURE ", id="insecure", markup=False)
            yield Static(id="state", markup=False)
            yield Static(id="mode", markup=False)
            yield Static(id="clock", markup=False)
        with Horizontal():
            yield Static(id="phase", markup=False)
            yield Static(id="timing", markup=False)
            yield Static(id="driver", markup=False)

    def watch_snapshot(self) -> None:
        self._render_snapshot()

    def watch_rollback_requested(self) -> None:
        self._render_snapshot()

    def _render_snapshot(self) -> None:
        snap = self.snapshot
        if snap is None or not self.is_mounted:
            return
        env = snap.environment
        for name in ENV_BADGE:
            self.set_class(env == name, f"-{name}")
        self.set_class(snap.insecure, "-insecure")
        set_text(self.query_one("#env", Static), ENV_BADGE.get(env, f" {env} "))
        set_text(self.query_one("#rollout", Static), snap.rollout)
        state = self.query_one("#state", Static)
        busy = snap.state in (State.ROLLING_BACK, State.ROLLED_BACK)
        key = "requested" if self.rollback_requested and not busy else snap.state.value.lower().replace("_", "-")
        if not engine_alive(snap):
            key = "no-engine"  # nothing else on the screen will happen: it leads
        for name in STATES:
            state.set_class(key == name, f"-{name}")
        label = {"requested": "ROLLBACK REQUESTED", "no-engine": f"{NO_ENGINE} · {snap.state.label}"}.get(key, snap.state.label)
        set_text(state, label)
        mode = self.query_one("#mode", Static)
        set_text(mode, "[RO]" if snap.readonly else "[RW]")
        mode.set_class(snap.readonly, "-ro")
        set_text(self.query_one("#clock", Static), clock_text(snap.now))
        timing, driver = timing_text(snap), driver_text(snap)
        phase = self.query_one("#phase", Static)
        # A long exposure gives way first: time in phase, soak and driver stay whole.
        if self.size.width:  # not before the first layout: the phase would flash cut
            room = max(12, self.size.width - cell_len(timing) - cell_len(driver) - 4)  # 4: their paddings
            if phase.styles.max_width is None or phase.styles.max_width.value != room:
                phase.styles.max_width = room
        set_text(phase, phase_text(snap))
        set_text(self.query_one("#timing", Static), timing)
        set_text(self.query_one("#driver", Static), driver)

    def on_resize(self) -> None:
        self._render_snapshot()
