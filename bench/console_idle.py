"""Idle CPU and terminal bytes/s: the demo plan (8 panes, 1 s poll) in a 120×36 pty for
60 s, nobody typing. Baseline in the same run: a bare Textual hello-world app.
Targets: ≤ 3 % of one core; ≤ 6 KB/s written to the terminal.
"""

from __future__ import annotations

import tempfile
import time
from itertools import pairwise

from common import SMOKE, emit, summary
from pty_console import PANE_VALUE, PtyProgram, hello_world, warroom

WINDOW = 1.2 if SMOKE else 60.0
SETTLE = 0.5 if SMOKE else 2.0  # seconds after the first frame: start-up work is not idle work
SLICES = 6  # the window in slices, for the spread


def idle(program: PtyProgram) -> tuple[float, float, list[float], list[float]]:
    """CPU % of one core and bytes/s over WINDOW after the first frame settles, and per slice."""
    try:
        program.wait_for(PANE_VALUE, timeout=60)
        time.sleep(SETTLE)
        marks = [(program.cpu_seconds(), time.perf_counter())]
        for _ in range(SLICES):
            time.sleep(WINDOW / SLICES)
            marks.append((program.cpu_seconds(), time.perf_counter()))
        cpu = [100 * (c1 - c0) / (t1 - t0) for (c0, t0), (c1, t1) in pairwise(marks)]
        bps = [program.bytes_between(t0, t1) / (t1 - t0) for (_, t0), (_, t1) in pairwise(marks)]
        (c_start, t_start), (c_end, t_end) = marks[0], marks[-1]
        whole = t_end - t_start
        return 100 * (c_end - c_start) / whole, program.bytes_between(t_start, t_end) / whole, cpu, bps
    finally:
        program.stop()


def main() -> None:
    hello_cpu, hello_bps, _, _ = idle(hello_world())
    with tempfile.TemporaryDirectory() as tmp:
        cpu, bps, cpu_slices, bps_slices = idle(warroom("--state", f"{tmp}/demo.sqlite"))
    print(f"idle over {WINDOW:g} s: warroom {cpu:.2f} % CPU, {bps / 1024:.2f} KB/s; hello-world {hello_cpu:.2f} % CPU, {hello_bps / 1024:.2f} KB/s")
    emit("idle_cpu", {"unit": "%", "value": cpu, "slices": summary(cpu_slices), "baseline": hello_cpu,
                      "target": 3.0, "met": cpu <= 3.0, "window_s": WINDOW})
    emit("terminal_bytes", {"unit": "B/s", "value": bps, "slices": summary(bps_slices), "baseline": hello_bps,
                            "target": 6144, "met": bps <= 6144, "window_s": WINDOW})


if __name__ == "__main__":
    main()
