"""Metrics sources by the plan's `type:`, found by entry point (group `warroom.sources`).

warroom's own (prometheus, simulator) register in its pyproject.toml; another package adds
one with its own entry point, without a line changed here (see plan/plugins.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from warroom.plan import plugins
from warroom.plan.sources import PluginSourceConfig
from warroom.sources.base import Source


class UnknownSource(plugins.PluginError):
    """A source type the plan names that is not registered, or cannot be loaded."""


def make_source(name: str, config: BaseModel, base_dir: Path, **extra: Any) -> Source:
    kind = str(getattr(config, "type", ""))
    try:
        plugin = plugins.load(plugins.SOURCES, kind)
    except plugins.PluginError as exc:
        raise UnknownSource(str(exc)) from None
    if not (isinstance(plugin.target, type) and issubclass(plugin.target, Source)):
        raise UnknownSource(f"source type {kind!r} is broken: its entry point names no Source class")
    if isinstance(config, PluginSourceConfig):  # another package's source: its keys as its own model reads them
        config = plugin.validate({**(config.model_extra or {}), "type": kind})
    # Each source's constructor takes (name, config, base_dir) and what its kind wants (the simulator: faults, models).
    make: Callable[..., Source] = plugin.target
    return make(name, config, base_dir, **extra)
