"""Idle CPU and terminal bytes/s: the demo plan (8 panes, 1 s poll) in a 120×36 pty for
60 s, nobody typing. Baseline in the same run: a bare Textual hello-world app.
Targets: ≤ 3 % of one core; ≤ 6 KB/s written to the terminal.
"""

from __future__ import annotations

import tempfile
import time

from common import SMOKE, emit
from pty_console import PANE_VALUE, PtyProgram, hello_world, warroom

WINDOW = 5.0 if SMOKE else 60.0


def idle(program: PtyProgram) -> tuple[float, float]:
    """(CPU % of one core, bytes per second) over WINDOW after the first frame settles."""
    try:
        program.wait_for(PANE_VALUE, timeout=60)
        time.sleep(2.0)  # start-up work is not idle work
        cpu0, t0 = program.cpu_seconds(), time.perf_counter()
        time.sleep(WINDOW)
        cpu1, t1 = program.cpu_seconds(), time.perf_counter()
        return 100 * (cpu1 - cpu0) / (t1 - t0), program.bytes_between(t0, t1) / (t1 - t0)
    finally:
        program.stop()


def main() -> None:
    hello_cpu, hello_bps = idle(hello_world())
    with tempfile.TemporaryDirectory() as tmp:
        cpu, bps = idle(warroom("--state", f"{tmp}/demo.sqlite"))
    print(f"idle over {WINDOW:g} s: warroom {cpu:.2f} % CPU, {bps / 1024:.2f} KB/s; hello-world {hello_cpu:.2f} % CPU, {hello_bps / 1024:.2f} KB/s")
    emit("idle_cpu", {"unit": "%", "value": cpu, "baseline": hello_cpu, "target": 3.0, "met": cpu <= 3.0, "window_s": WINDOW})
    emit("terminal_bytes", {"unit": "B/s", "value": bps, "baseline": hello_bps, "target": 6144, "met": bps <= 6144, "window_s": WINDOW})


if __name__ == "__main__":
    main()
