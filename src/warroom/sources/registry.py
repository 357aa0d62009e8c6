"""Metrics sources by plan `type`. Adding a source is one module and one line here."""

from __future__ import annotations

import importlib
from pathlib import Path

from warroom.sources.base import Source

SOURCES: dict[str, str] = {
    "simulator": "warroom.sources.simulator.source:SimulatorSource",
    "prometheus": "warroom.sources.prometheus:PrometheusSource",
}


def make_source(name: str, config, base_dir: Path, **extra) -> Source:
    module, _, cls = SOURCES[config.type].partition(":")
    return getattr(importlib.import_module(module), cls)(name, config, base_dir, **extra)
