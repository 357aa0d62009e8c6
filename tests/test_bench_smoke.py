"""Each bench script runs once at tiny size so none of them can rot. Nothing here times anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name not in {"common.py", "run_all.py"})


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_runs_and_prints_its_figure(script):
    proc = subprocess.run([sys.executable, script], cwd=BENCH, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "WARROOM_BENCH_SMOKE": "1"}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figure = json.loads(proc.stdout.strip().splitlines()[-1].removeprefix("FIGURE "))
    assert figure["name"] == Path(script).stem and "met" in figure
