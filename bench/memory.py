"""Memory: RSS of a headless runner driving the demo plan (8 panes, 1 s poll) at 60× speed
for two hours of simulated time, sampled as it goes; reports the RSS after one hour and
the slope over the second hour (growth would be a leak). The first hour is not flat by
design: SQLite's page cache fills up to its bound (2 MB by default) as the journal's
samples table grows past it, then stays there.

Target: ≤ 100 MB and no growth. Baseline in the same run: the RSS of a bare Python
process importing the same modules.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from common import SMOKE, emit, rss_mb

SPEED = 60
SIM_SECONDS = 120 if SMOKE else 7200


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (wall seconds, MB), in MB per simulated hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    var = sum((t - mx) ** 2 for t, _ in points) or 1.0
    per_wall_second = sum((t - mx) * (m - my) for t, m in points) / var
    return per_wall_second * 3600 / SPEED


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "demo.yaml"
        plan.write_text(resources.files("warroom.plan").joinpath("demo.yaml").read_text())
        baseline = subprocess.Popen([sys.executable, "-c", "import warroom.cli.main, warroom.engine.engine, time; time.sleep(3)"])
        time.sleep(2)
        base_rss = rss_mb(baseline.pid)
        baseline.wait()
        proc = subprocess.Popen(
            [sys.executable, "-m", "warroom", "run", "--headless", str(plan), "--speed", str(SPEED), "--status-every", "600"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        points = []
        start = time.monotonic()
        wall = SIM_SECONDS / SPEED
        while time.monotonic() - start < wall:
            time.sleep(min(2.0, wall / 10))
            points.append((time.monotonic() - start, rss_mb(proc.pid)))
        proc.terminate()
        proc.wait(timeout=10)
    half = wall / 2
    at_half = min(points, key=lambda p: abs(p[0] - half))[1]
    end = points[-1][1]
    slope = slope_per_hour([p for p in points if p[0] >= half])
    hours = SIM_SECONDS / 3600
    print(f"memory: {at_half:.1f} MB after {hours / 2:.2f} h simulated at {SPEED}×, {end:.1f} MB after {hours:.2f} h; "
          f"slope over the second half {slope:+.2f} MB/h; bare import {base_rss:.1f} MB")
    emit("memory", {"unit": "MB", "rss_half": at_half, "rss_end": end, "hours": hours, "slope_mb_per_hour": slope,
                    "baseline": base_rss, "target": 100, "met": max(at_half, end) <= 100 and slope <= 1.0, "samples": len(points)})


if __name__ == "__main__":
    main()
