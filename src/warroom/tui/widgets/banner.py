"""The banner: which launch, where, the worst live condition, where it stands, who drives."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from warroom.core.condition import worst_condition
from warroom.core.snapshot import Snapshot
from warroom.core.units import format_duration
from warroom.tui.clock_text import clock_text
from warroom.tui.refresh import part, set_text
from warroom.tui.widgets.phase_strip import PhaseStrip

# Words as well as colours, so NO_COLOR and 16-colour terminals still tell them apart.
ENV_BADGE = {
    "production": " ‼ PRODUCTION ‼ ",
    "staging": " staging ",
    "drill": " ▞▞ DRILL ▞▞ ",
}
LEVELS = ("bad", "warn", "ok", "info")


def driver_text(snap: Snapshot) -> str:
    engine = snap.engine
    if engine is None or not engine.alive:
        return "engine: NONE"
    if engine.standbys:
        return f"engine: {engine.room()}"
    return f"engine: {engine.holder.rpartition(' pid ')[0] or engine.holder}"  # user@host: a pid tells the room nothing


def data_age_text(snap: Snapshot, now: float) -> str:
    """The age of the newest sample of any pane: a frozen source shows here first."""
    newest = max((p.last_good_at for p in snap.panes if p.last_good_at is not None), default=None)
    if not snap.panes:
        return ""
    if newest is None:
        return "no data yet"
    age = int(max(0.0, now - newest))
    return "data now" if age < 1 else f"data {format_duration(age)} ago"


class Banner(Widget):
    """Two lines: what launch, where, the worst live condition, the clock; then the phase strip."""

    # The environment badge sets both its colours (a `reverse` of the environment colour
    # took the banner's background as text: dark red on red, pale on yellow). Under
    # NO_COLOR colours turn grey: a loud badge as grey as its banner is inverted to stand out.
    # The condition badge is reverse video in every theme, so it survives NO_COLOR too.
    DEFAULT_CSS = """
    Banner { height: 2; background: $panel; }
    Banner Horizontal { height: 1; }
    Banner Static { width: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    Banner #rollout { max-width: 50%; text-style: bold; }
    Banner #why { width: 1fr; text-align: right; color: $text-muted; }
    Banner #age, Banner #driver { color: $text-muted; }
    Banner #driver.-nobody { color: $warning; text-style: bold; }
    Banner.-production { background: $env-production 40%; }
    Banner.-production #env { background: $env-production; color: $env-production-text; text-style: bold; }
    Banner.-staging #env { background: $env-staging; color: $env-staging-text; }
    Banner.-drill #env { background: $env-drill; color: $env-drill-text; text-style: bold; }
    Banner.-production:nocolor:dark #env, Banner.-drill:nocolor:light #env { text-style: bold reverse; }
    Banner #state { text-style: bold reverse; }
    Banner #state.-ok { color: $success; }
    Banner #state.-info { color: $primary; }
    Banner #state.-warn { color: $warning; }
    Banner #state.-bad { color: $error; }
    Banner #mode.-ro { color: $warning; text-style: bold reverse; }
    Banner #insecure { color: $error; text-style: bold reverse; display: none; }
    Banner.-insecure #insecure { display: block; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)  # parts update themselves
    now: reactive[float] = reactive(0.0, repaint=False)
    rollback_requested: reactive[bool] = reactive(False)
    engine_alive: reactive[bool] = reactive(True)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(id="env", markup=False)
            yield Static(id="rollout", markup=False)
            yield Static(" INSECURE ", id="insecure", markup=False)
            yield Static(id="why", markup=False)
            yield Static(id="state", markup=False)
            yield Static(id="mode", markup=False)
            yield Static(id="clock", markup=False)
        with Horizontal():
            yield PhaseStrip().data_bind(Banner.snapshot, Banner.now)
            yield Static(id="age", markup=False)
            yield Static(id="driver", markup=False)

    def watch_snapshot(self) -> None:
        self._render_snapshot()

    def watch_now(self) -> None:
        self._render_time()

    def watch_rollback_requested(self) -> None:
        self._render_time()

    def watch_engine_alive(self) -> None:
        self._render_time()

    def _render_snapshot(self) -> None:
        snap = self.snapshot
        if snap is None or not self.is_mounted:
            return
        env = snap.environment
        for name in ENV_BADGE:
            self.set_class(env == name, f"-{name}")
        self.set_class(snap.insecure, "-insecure")
        set_text(part(self, "#env", Static), ENV_BADGE.get(env, f" {env} "))
        set_text(part(self, "#rollout", Static), snap.rollout)
        mode = part(self, "#mode", Static)
        set_text(mode, "[RO]" if snap.readonly else "[RW]")
        mode.set_class(snap.readonly, "-ro")
        driver = part(self, "#driver", Static)
        set_text(driver, driver_text(snap))
        driver.set_class(not snap.automation, "-nobody")
        self._render_time()

    def _render_time(self) -> None:
        """What moves with the clock: the condition (a countdown), the clock, the data's age."""
        snap = self.snapshot
        if snap is None or not self.is_mounted:
            return
        condition = worst_condition(snap, self.now, engine_alive=self.engine_alive, rollback_requested=self.rollback_requested)
        state = part(self, "#state", Static)
        for level in LEVELS:
            state.set_class(condition.level == level, f"-{level}")
        set_text(state, condition.word)
        set_text(part(self, "#why", Static), condition.why)
        set_text(part(self, "#clock", Static), clock_text(self.now))
        set_text(part(self, "#age", Static), data_age_text(snap, self.now))
