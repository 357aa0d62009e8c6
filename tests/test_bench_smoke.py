"""Each bench script runs once at tiny size so none of them can rot. Nothing here times anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from common import BENCH, scripts  # noqa: E402
from run_all import describe  # noqa: E402


@pytest.mark.parametrize("script", [p.name for p in scripts()])
def test_bench_script_runs_and_prints_its_figures(script):
    proc = subprocess.run([sys.executable, script], cwd=BENCH, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "WARROOM_BENCH_SMOKE": "1"}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = [json.loads(line.removeprefix("FIGURE ")) for line in proc.stdout.splitlines() if line.startswith("FIGURE ")]
    assert figures and all("met" in f and f["name"] for f in figures)
    for figure in figures:  # and `make bench` can put each in its table
        result, _baseline, target = describe(figure)
        assert result and target and not result.startswith("{"), figure
