"""Shared by the bench scripts: repeat, summarise, print one JSON figure line.

Benchmarks print figures; they never assert. Ratios are against a baseline measured
in the same run, because these machines are shared and noisy.
"""

from __future__ import annotations

import compileall
import json
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOKE = os.environ.get("WARROOM_BENCH_SMOKE") == "1"  # tiny sizes: proves the script runs

# Measure warroom as installed: pip compiles an installed package's bytecode, but the
# editable checkout under PYTHONDONTWRITEBYTECODE (set on these machines) would otherwise
# recompile every module on every start (≈ 60 ms of a console start-up).
compileall.compile_dir(ROOT / "src", quiet=1)


BENCH = Path(__file__).resolve().parent
LIBRARY = {"common.py", "run_all.py", "pty_console.py"}  # modules, not bench scripts


def scripts() -> list[Path]:
    """Every bench script, in a stable order."""
    return sorted(p for p in BENCH.glob("*.py") if p.name not in LIBRARY)


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))],
        "n": len(ordered),
    }


def emit(name: str, figure: dict) -> None:
    """The last line of every bench script: one JSON object run_all.py collects."""
    print("FIGURE " + json.dumps({"name": name, **figure}, sort_keys=True))
    sys.stdout.flush()


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu or platform.machine()}, Python {platform.python_version()}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
