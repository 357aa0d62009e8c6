"""Start → first frame with data, attaching to a running engine: process start to the first
painted frame showing a pane value (the demo plan as a plan file, its engine already up, 120×36
pty). The console builds no engine: it reads the engine's snapshot from the store. Baseline
in the same run: a bare Textual hello-world app showing a value. Target (issue 22): ≤ 1.5× the
hello-world; the goal is 1.3×.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

from common import SMOKE, emit, summary
from pty_console import PANE_VALUE, hello_world, warroom

TARGET, GOAL = 1.5, 1.3  # × the hello-world's median of the same run


def time_to_value(start) -> float:
    program = start()
    try:
        return program.wait_for(PANE_VALUE, timeout=60) - program.started
    finally:
        program.stop()


def main() -> None:
    runs = 2 if SMOKE else 9
    hello, console = [], []
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "demo.yaml"
        plan.write_text(resources.files("warroom.plan").joinpath("demo.yaml").read_text(encoding="utf-8"))
        subprocess.run([sys.executable, "-m", "warroom", "up", str(plan)], check=True, capture_output=True)
        try:
            for _ in range(runs):  # interleaved, so machine noise hits both alike
                hello.append(time_to_value(hello_world))
                console.append(time_to_value(lambda: warroom(str(plan))))
        finally:
            subprocess.run([sys.executable, "-m", "warroom", "down", str(plan), "--force"], capture_output=True)
    h, c = summary(hello), summary(console)
    ratio = c["median"] / h["median"]
    print(f"first frame with data, attaching to a running engine: warroom median {c['median'] * 1000:.0f} ms, "
          f"hello-world {h['median'] * 1000:.0f} ms → {ratio:.2f}×")
    emit("start_to_frame", {"unit": "s", **c, "baseline": h["median"], "ratio": ratio, "target": TARGET, "goal": GOAL,
                            "met": ratio <= TARGET})


if __name__ == "__main__":
    main()
