"""Start → first frame with data: process start to the first painted frame showing a pane
value (demo plan, 120×36 pty). Baseline in the same run: a bare Textual hello-world app
showing a value. Target: ≤ 1.3× the hello-world.
"""

from __future__ import annotations

import tempfile

from common import SMOKE, emit, summary
from pty_console import PANE_VALUE, hello_world, warroom


def time_to_value(start) -> float:
    program = start()
    try:
        return program.wait_for(PANE_VALUE, timeout=60) - program.started
    finally:
        program.stop()


def main() -> None:
    runs = 2 if SMOKE else 9
    hello, console = [], []
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        hello.append(time_to_value(hello_world))
        with tempfile.TemporaryDirectory() as tmp:
            console.append(time_to_value(lambda: warroom("--state", f"{tmp}/demo.sqlite")))
    h, c = summary(hello), summary(console)
    ratio = c["median"] / h["median"]
    print(f"first frame with data: warroom median {c['median'] * 1000:.0f} ms, hello-world {h['median'] * 1000:.0f} ms → {ratio:.2f}×")
    emit("start_to_frame", {"unit": "s", **c, "baseline": h["median"], "ratio": ratio, "target": 1.3, "met": ratio <= 1.3})


if __name__ == "__main__":
    main()
