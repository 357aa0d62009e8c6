"""Themes as data files: `themes/*.yaml|json` in a checkout, `warroom/themes` when installed."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import yaml
from textual.color import ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "warroom-dark"

# Colours the banner and panes use; a theme file may override any of them, and the
# fallbacks let Textual's own themes (selectable from the palette) work too.
VARIABLE_DEFAULTS = {
    "env-production": "#b30d13",
    "env-production-text": "#ffffff",
    "env-staging": "#1f4f8f",
    "env-staging-text": "#ffffff",
    "env-drill": "#f5c518",
    "env-drill-text": "#000000",
    "status-stale": "#8b949e",
}

_THEME_FIELDS = {f.name for f in fields(Theme)}


class ThemeError(Exception):
    pass


def themes_dir() -> Path | None:
    """The installed package's `warroom/themes`, else the checkout's top-level `themes/`."""
    # Beside the package's modules (where a wheel puts it): importlib.resources would say the same, and
    # cost a console's first frame the import of it and of zipfile.
    here = Path(__file__).resolve()
    packaged = here.parents[1] / "themes"
    if packaged.is_dir():
        return packaged
    checkout = here.parents[3] / "themes"
    return checkout if checkout.is_dir() else None


def theme_problem(theme: Theme) -> str | None:
    """What is wrong with a theme's colours, or None: a bad colour is found here, not when drawn."""
    try:
        theme.to_color_system().generate()
    except (TypeError, ValueError, ColorParseError) as exc:
        return f"{theme.name}: {exc}"
    return None


def load_theme(path: Path, validate: bool = True) -> Theme:
    """A theme file; `validate` checks its colours too (the console checks one when it is picked)."""
    try:
        text = path.read_text(encoding="utf-8")
        # libyaml's loader when there is one: the console loads every theme before its first frame.
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ThemeError(f"{path.name}: cannot read the theme ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict) or "name" not in data or "primary" not in data:
        raise ThemeError(f"{path.name}: a theme needs at least `name` and `primary`")
    unknown = sorted(set(data) - _THEME_FIELDS)
    if unknown:
        raise ThemeError(f"{path.name}: unknown theme keys: {', '.join(unknown)}")
    try:
        theme = Theme(**data)
    except (TypeError, ValueError) as exc:
        raise ThemeError(f"{path.name}: {exc}") from None
    problem = theme_problem(theme) if validate else None
    if problem:
        raise ThemeError(f"{path.name}: {problem.split(': ', 1)[1]}")
    return theme


def load_themes(directory: Path | None = None, validate: bool = True) -> tuple[list[Theme], list[str]]:
    """Every theme in the directory, sorted by file name, and a message per broken file.

    A broken theme file must not keep the console from opening on launch day.
    """
    directory = directory or themes_dir()
    if directory is None:
        return [], ["no themes directory found; using Textual's default theme"]
    themes, problems = [], []
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml", ".json")):
        try:
            themes.append(load_theme(path, validate))
        except ThemeError as exc:
            problems.append(str(exc))
    return themes, problems
