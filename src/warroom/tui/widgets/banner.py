"""The banner: which launch, where, the worst live condition, where it stands, who drives.

One widget drawing its two lines (it was thirteen): the console's first frame comes sooner,
and every screen and dialog carries one (screens/under_banner.py).
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive

from warroom.core.condition import Condition, worst_condition
from warroom.core.snapshot import Snapshot
from warroom.core.units import format_duration
from warroom.tui.clock_text import clock_text
from warroom.tui.parts import Parts
from warroom.tui.refresh import changed
from warroom.tui.widgets.phase_strip import ROLES, strip_text

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


class Banner(Parts):
    """Two lines: what launch, where, the worst live condition, the clock; then the phase strip,
    the data's age and who drives."""

    # The environment badge sets both its colours (a `reverse` of the environment colour
    # took the banner's background as text: dark red on red, pale on yellow). Under
    # NO_COLOR colours turn grey: a loud badge as grey as its banner is inverted to stand out.
    # The condition badge is reverse video in every theme, so it survives NO_COLOR too.
    DEFAULT_CSS = """
    Banner { height: 2; background: $panel; }
    Banner.-production { background: $env-production 40%; }
    """
    PARTS = {
        "env-production": "$env-production-text on $env-production bold", "env-staging": "$env-staging-text on $env-staging",
        "env-drill": "$env-drill-text on $env-drill bold",
        "rollout": "bold", "why": "$text-muted", "age": "$text-muted", "driver": "$text-muted", "driver-nobody": "$warning bold",
        "state-ok": "$success bold reverse", "state-info": "$primary bold reverse", "state-warn": "$warning bold reverse",
        "state-bad": "$error bold reverse", "mode": "", "mode-ro": "$warning bold reverse", "clock": "",
        "insecure": "$error bold reverse", "freeze": "$warning bold reverse",
        "strip-done": "$success", "strip-current": "bold", "strip-next": "$text-muted", "strip-note": "", "strip-sep": "$text-muted",
    }

    def env_style(self) -> Style:
        """The environment badge's own colours; under NO_COLOR the loud ones inverted to stand out."""
        env = self.snapshot.environment if self.snapshot else ""
        style = self.part(f"env-{env}") if f"env-{env}" in self.PARTS else Style()
        dark = self.app.current_theme.dark
        if self.app.no_color and (env == "production" and dark or env == "drill" and not dark):
            style += Style(reverse=True)
        return style

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    now: reactive[float] = reactive(0.0, repaint=False)
    rollback_requested: reactive[bool] = reactive(False, repaint=False)
    engine_alive: reactive[bool] = reactive(True, repaint=False)

    def watch_snapshot(self) -> None:
        snap = self.snapshot
        if snap is not None:
            self.set_class(snap.environment == "production", "-production")
        self._update()

    def watch_now(self) -> None:
        self._update()

    def watch_rollback_requested(self) -> None:
        self._update()

    def watch_engine_alive(self) -> None:
        self._update()

    def on_resize(self) -> None:
        self._update()  # the badge's words and the strip's detail depend on the width

    def notify_style_update(self) -> None:
        self._drawn = None
        super().notify_style_update()
        self.call_later(self._update)  # the theme changed: draw again in its colours

    _drawn: tuple[Text, Text] | None = None
    _drawn_at: tuple[int, bool] | None = None  # the width (and narrowness) it was drawn for
    _strip = ""

    def condition(self) -> Condition | None:
        snap = self.snapshot
        if snap is None:
            return None
        return worst_condition(snap, self.now, engine_alive=self.engine_alive, rollback_requested=self.rollback_requested)

    def _update(self) -> None:
        """Repaint when the words changed (the clock moves once a second), never for nothing."""
        condition = self.condition()
        if condition is not None:
            for level in LEVELS:
                self.set_class(condition.level == level, f"-level-{level}")  # the condition's level, for whoever asks
        self._drawn = None
        rows = self._rows()
        if changed(self, tuple((row.plain, tuple(row.spans)) for row in rows)):
            self.refresh()

    def shown(self, part: str) -> str:
        """A part's words as drawn now (tests, and whoever reads the banner in parts): `state`, `why`,
        `env`, `rollout`, `insecure`, `mode`, `clock`, `strip`, `age`, `driver`, `freeze`."""
        if part == "strip":
            self._rows()
            return self._strip
        return self._parts().get(part.lstrip("#"), "")

    def _parts(self) -> dict[str, str]:
        snap, condition = self.snapshot, self.condition()
        if snap is None or condition is None:
            return {}
        narrow = self.screen.has_class("-narrow") and bool(condition.narrow) if self.is_attached else False
        return {
            "env": ENV_BADGE.get(snap.environment, f" {snap.environment} "),
            "rollout": snap.rollout,
            "insecure": " INSECURE " if snap.insecure else "",
            "why": condition.why,
            "state": condition.narrow if narrow else condition.word,
            "mode": "[RO]" if snap.readonly else "[RW]",
            "clock": clock_text(self.now),
            "age": data_age_text(snap, self.now),
            "driver": driver_text(snap),
            "freeze": snap.freeze_banner(self.now),  # `FREEZE until 18:00 (Black Friday) · rollback allowed`
        }

    def _rows(self) -> tuple[Text, Text]:
        snap, width = self.snapshot, self.size.width
        narrow = self.screen.has_class("-narrow") if self.is_attached else False
        # Only if drawn for this width: a relayout repaints the banner before its Resize event is handled.
        if self._drawn is not None and self._drawn_at == (width, narrow):
            return self._drawn
        parts = self._parts()
        if snap is None or not parts or width <= 0:
            return Text(""), Text("")
        condition = self.condition()
        level = condition.level if condition else "info"
        named = {"state": f"state-{level}", "mode": "mode-ro" if snap.readonly else "mode",
                 "driver": "driver-nobody" if not snap.automation else "driver"}

        def cell(name: str) -> Text:
            text = parts[name]
            return Text.assemble(" ", (text, self.part(named.get(name, name))), " ") if text else Text("")

        env = Text(f" {parts['env']} ", style=self.env_style())
        right = Text.assemble(cell("state"), cell("mode"), cell("clock"))
        insecure = cell("insecure")
        rest = max(0, width - env.cell_len - right.cell_len - insecure.cell_len)
        rollout = cell("rollout")
        # Wide: the rollout gets up to half the line and its cause the rest; narrow: the cause is
        # in the status line and the rollout's name takes the room.
        rollout.truncate(rest if narrow else min(rest, width // 2), overflow="ellipsis")
        why_room = rest - rollout.cell_len
        why = Text("")
        if not narrow and parts["why"] and why_room > 2:
            why = Text(parts["why"], style=self.part("why"))
            why.truncate(why_room - 2, overflow="ellipsis")
            why = Text.assemble(" " * (why_room - 1 - why.cell_len), why, " ")
        first = Text.assemble(env, rollout, insecure, why)
        first.pad_right(width - first.cell_len - right.cell_len)
        first.append_text(right)
        tail = Text.assemble(cell("freeze"), cell("age"), cell("driver"))  # a freeze before the strip's detail
        styles = {role: self.part(f"strip-{role}") for role in ROLES}
        strip = strip_text(snap, self.now, max(1, width - tail.cell_len - 2), styles)
        self._strip = strip.plain
        second = Text.assemble(" ", strip)
        second.pad_right(width - second.cell_len - tail.cell_len)
        second.append_text(tail)
        for row in (first, second):
            row.truncate(width, overflow="ellipsis")
        self._drawn, self._drawn_at = (first, second), (width, narrow)
        return self._drawn

    def render(self) -> Text:
        first, second = self._rows()
        return Text("\n").join([first, second])
