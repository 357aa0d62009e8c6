"""The built-in demo plan, run in a fresh folder so every demo starts clean."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path

from warroom.plan.load import parse_plan
from warroom.plan.model import Plan

DEMO_NAME = "demo (built-in)"
WORKDIR_PREFIX = "warroom-demo-"  # in the temp folder; `warroom journal` alone looks there too


def demo_plan(workdir: Path | None = None) -> Plan:
    workdir = workdir or Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    text = resources.files("warroom.plan").joinpath("demo.yaml").read_text(encoding="utf-8")
    return parse_plan(text, DEMO_NAME, workdir)
