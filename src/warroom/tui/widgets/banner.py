"""The banner: which rollout, which environment, where it stands, who drives."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from ...engine.snapshot import Snapshot, State
from ...plan import format_duration
from ..refresh import set_text

# Words as well as colours, so NO_COLOR and 16-colour terminals still tell them apart.
ENV_BADGE = {
    "production": " ‼ PRODUCTION ‼ ",
    "staging": " staging ",
    "drill": " ▞▞ DRILL ▞▞ ",
}
STATES = ("pending", "running", "paused", "complete", "rolling-back", "rolled-back", "requested")


def clock_text(ts: float) -> str:
    # UTC: the team on a call shares one clock, and the journal is in UTC too.
    return time.strftime("%H:%M:%SZ", time.gmtime(ts))


def phase_text(snap: Snapshot) -> str:
    if snap.phase is None:
        return f"0/{snap.phase_count} not started"
    return f"{snap.phase.index}/{snap.phase_count} {snap.phase.name}"


def timing_text(snap: Snapshot) -> str:
    # Soak only means something while the phase is live (not rolled back or complete).
    if snap.phase is None or snap.state not in (State.RUNNING, State.PAUSED):
        return ""
    text = f"in phase {format_duration(snap.phase.elapsed)}"
    if snap.phase.soak_left > 0:
        text += f" · soak {format_duration(snap.phase.soak_left)} left"
    else:
        text += " · soak done"
    return text


def driver_text(snap: Snapshot) -> str:
    if snap.automation:
        return "driver: you"
    return f"driver: {snap.driver}" if snap.driver else "driver: nobody"


class Banner(Widget):
    """Two lines that answer: what launch, where, which phase, what state, who drives."""

    # Loud badges are `reverse` on a foreground colour: in colour that is a filled
    # badge, and under NO_COLOR (colours stripped, styles kept) it is still inverted.
    DEFAULT_CSS = """
    Banner { height: 2; background: $panel; }
    Banner Horizontal { height: 1; }
    Banner Static { width: auto; padding: 0 1; }
    Banner #rollout { width: 1fr; text-style: bold; }
    Banner #driver { width: 1fr; text-align: right; color: $text-muted; }
    Banner.-production { background: $env-production 40%; }
    Banner.-production #env { color: $env-production; text-style: bold reverse; }
    Banner.-staging #env { background: $env-staging; color: $env-staging-text; }
    Banner.-drill #env { color: $env-drill; text-style: bold reverse; }
    Banner #state { text-style: bold reverse; }
    Banner #state.-running, Banner #state.-complete { color: $success; }
    Banner #state.-paused, Banner #state.-pending { color: $warning; }
    Banner #state.-rolling-back, Banner #state.-rolled-back, Banner #state.-requested { color: $error; }
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
        for name in STATES:
            state.set_class(key == name, f"-{name}")
        label = "ROLLBACK REQUESTED" if key == "requested" else snap.state.label
        set_text(state, label)
        mode = self.query_one("#mode", Static)
        set_text(mode, "[RO]" if snap.readonly else "[RW]")
        mode.set_class(snap.readonly, "-ro")
        set_text(self.query_one("#clock", Static), clock_text(snap.now))
        set_text(self.query_one("#phase", Static), phase_text(snap))
        set_text(self.query_one("#timing", Static), timing_text(snap))
        set_text(self.query_one("#driver", Static), driver_text(snap))
