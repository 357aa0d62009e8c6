"""Where a rollout's files live: its state (the store) and its engine's log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan


def default_state_path(rollout_name: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "warroom"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rollout_name)
    return base / f"{safe}.sqlite"


def state_path(plan: "Plan", override: str | Path | None = None) -> Path:
    """The plan's state: `--state`, else the plan's `state`, else one per rollout name in the user state dir."""
    if override:
        return Path(override).expanduser()
    if plan.state:
        return plan.resolve_path(plan.state)
    return default_state_path(plan.rollout.name)


def engine_log_path(state: Path) -> Path:
    """The engine's log, next to its state: `launch.sqlite` → `launch.engine.log`."""
    return state.with_name((state.stem if state.suffix in (".sqlite", ".db") else state.name) + ".engine.log")
