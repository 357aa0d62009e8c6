"""Styles for the parts a widget draws itself (a pane's value, the banner's badge, a journal
line's time), from the theme's variables.

Textual's component classes would say these in CSS, but each is restyled through a node of
its own, for every widget that has it, at every style update: the console's sixty-odd parts
cost its first frame more than all its widgets did. A part here is a few words over the
theme's variables (`$warning bold reverse`, `$env-drill on $env-drill-text`), resolved once
per theme and background and shared by every widget. NO_COLOR still applies: Textual greys
whatever is drawn.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from textual.color import Color
from textual.widget import Widget

WORDS = {"bold", "italic", "reverse", "underline", "strike", "dim"}


def _colour(value: str, under: Color) -> Color:
    """A theme variable's colour as seen over `under`: `auto 60%` is the readable text colour at
    that strength, and a colour with alpha is blended, as Textual's CSS does."""
    if value.startswith("auto"):
        strength = float(value.split()[1].rstrip("%")) / 100 if len(value.split()) > 1 else 0.95
        return under + under.get_contrast_text(strength)
    return under + Color.parse(value)


def resolve(spec: str, variables: dict[str, str], under: Color) -> Style:
    """The Rich style of `spec` (`$name` a colour, `on $name` a background, and text-style words)."""
    background = under
    words = spec.split()
    colour: str | None = None
    bgcolor: Color | None = None
    attrs: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if word == "on" and i + 1 < len(words):
            bgcolor = background = _colour(variables.get(words[i + 1].lstrip("$"), words[i + 1]), background)
            i += 2
            continue
        if word.startswith("$"):
            colour = variables.get(word[1:], "")
        elif word in WORDS:
            attrs.add(word)
        i += 1
    on = {word: True for word in attrs}
    return Style(color=_colour(colour, background).rich_color if colour else None,
                 bgcolor=bgcolor.rich_color if bgcolor else None, bold=on.get("bold"), italic=on.get("italic"),
                 reverse=on.get("reverse"), underline=on.get("underline"), strike=on.get("strike"), dim=on.get("dim"))


_STYLES: dict[tuple[str, str, str], Style] = {}  # (theme, spec, background) → style: a few dozen in all


def _variables(app: Any) -> dict[str, str]:
    kept = app.__dict__.get("_part_variables")
    if kept is None or kept[0] != app.theme:
        # The variables Textual worked out for the theme's CSS last (worked out again if there are none).
        variables = getattr(app, "theme_variables", None) or app.get_css_variables()
        kept = app.__dict__["_part_variables"] = (app.theme, variables)
    return kept[1]


class Parts(Widget):
    """A widget that styles the parts it draws by name, from PARTS (name → spec)."""

    PARTS: dict[str, str] = {}

    def part(self, name: str) -> Style:
        return self.style_of(self.PARTS.get(name, name))

    def style_of(self, spec: str) -> Style:
        """The Rich style of a spec over this widget's background, in the current theme."""
        under = self.background_colors[1]
        key = (self.app.theme, spec, under.hex)
        style = _STYLES.get(key)
        if style is None:
            style = _STYLES[key] = resolve(spec, _variables(self.app), under)
        return style
