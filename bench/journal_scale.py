"""`warroom journal` and `warroom report` on a journal of a million entries: time and peak memory.

The journal is a real launch's (the demo plan run headless, then rolled back), with two
weeks of a flapping launch spliced in before the rollback: a CPU guardrail breaching and
clearing, the metrics source dropping out and back, a webhook failing, consoles coming
and going, and the panes' samples every 30 s. Each verb runs as its own process; its
peak RSS is its own VmHWM as it exits, its time the wall clock's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from common import SMOKE, emit, machine

WARROOM = [sys.executable, "-m", "warroom"]
ENTRIES = 2_000 if SMOKE else 1_000_000
PANES = ("error_rate", "latency_p50", "latency_p95", "latency_p99", "ws_connections", "connection_success", "cpu", "memory")
CYCLE = 10.0  # seconds of launch per cycle of the entries below
SAMPLE_EVERY = 30.0
TARGET_MB = 150  # the audit measured 1.4 GB (journal --limit 10) and 2 GB (report)
TARGET_S = {"journal --limit 10": 1.0, "journal": 30.0, "report (md)": 60.0, "report (html)": 60.0}

AUTO = {"automatic": True, "driver": "root@bastion pid 4242", "host": "", "ssh_client": "", "tty": "", "user": "warroom"}
HUMAN = {"automatic": False, "host": "bastion", "ssh_client": "10.0.0.7", "tty": "pts/3", "user": "alice"}


def _cycle(ts: float) -> list[tuple]:
    """Ten seconds of a flapping launch: (ts, kind, message, actor, action_id, data)."""
    breach = {"action": "pause", "actor": AUTO, "for": 30.0, "guardrail": "cpu", "op": "above", "query": "cpu",
              "since": ts, "source": "service", "threshold": 0.7, "value": 0.74}
    rows = [
        (ts, "guardrail.breach", "cpu: cpu 74.00% above 70.00%; acting after 30s if it holds", "warroom (automatic)", None, breach),
        (ts + 5, "guardrail.clear", "cpu back within threshold", "warroom (automatic)", None, {"guardrail": "cpu", "value": 0.61}),
        (ts + 6, "source.error", "source service: timeout after 5s", "warroom (automatic)", None,
         {"source": "service", "detail": "timeout after 5s"}),
        (ts + 7, "source.recovered", "source service answers again", "warroom (automatic)", None, {"source": "service"}),
        (ts + 7, "notify.failed", "notify slack: HTTP 502, retrying in 1s", "warroom (automatic)", None, {"target": 0}),
        (ts + 8, "notify.delivered", "notify slack: delivered after 1 retry", "warroom (automatic)", None, {"target": 0}),
        (ts + 9, "console.start", "console started by alice@bastion on pts/3, observing", "alice@bastion", None,
         {"actor": HUMAN, "automation": False, "readonly": True}),
        (ts + 9.5, "console.stop", "console of alice@bastion stopped", "alice@bastion", None, {"actor": HUMAN}),
    ]
    return [(t, k, m, a, i, json.dumps(d, sort_keys=True)) for t, k, m, a, i, d in rows]


def make_journal(folder: Path, entries: int = ENTRIES) -> Path:
    """A plan and its state database with about `entries` journal entries; returns the plan."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = folder / "plan.yaml"
    plan.write_text((resources.files("warroom.plan") / "demo.yaml").read_text().replace("state: demo.sqlite", "state: state.sqlite"))
    subprocess.run([*WARROOM, "run", "--headless", str(plan), "--speed", "max", "--for", "2m"], cwd=folder,
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    db = sqlite3.connect(folder / "state.sqlite", isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    cycles = max(1, entries // len(_cycle(0.0)))
    # The two weeks end a minute before the rollback below (wall-clock time): the real run's
    # entries move back to just before them, so the journal's clock runs forward throughout.
    start = time.time() - cycles * CYCLE - 60
    db.execute("BEGIN")
    shift = db.execute("SELECT MAX(ts) FROM journal").fetchone()[0] + CYCLE - start
    db.execute("UPDATE journal SET ts = ts - ?", (shift,))
    db.execute("UPDATE samples SET ts = ts - ?", (shift,))
    for chunk in range(0, cycles, 5_000):
        rows = [row for c in range(chunk, min(cycles, chunk + 5_000)) for row in _cycle(start + c * CYCLE)]
        db.executemany("INSERT INTO journal (ts, kind, message, actor, action_id, data) VALUES (?, ?, ?, ?, ?, ?)", rows)
    end = start + cycles * CYCLE
    samples = ((t, pane, 0.5 + 0.1 * ((t // SAMPLE_EVERY) % 7)) for t in _range(start, end, SAMPLE_EVERY) for pane in PANES)
    db.executemany("INSERT INTO samples (ts, series, value) VALUES (?, ?, ?)", samples)
    db.execute("COMMIT")
    db.close()
    # The launch ends as a real one does: a human rolls back (the engine starts on the long journal).
    subprocess.run([*WARROOM, "rollback", str(plan), "--reason", "two weeks of CPU flapping"], cwd=folder,
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    # `rollback` started an engine for it (none was alive): the measured verbs are clients, it goes.
    subprocess.run([*WARROOM, "down", str(plan), "--force"], cwd=folder, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return plan


def _range(start: float, end: float, step: float):
    t = start
    while t < end:
        yield t
        t += step


# The verb's own peak, read by the process itself as it exits: VmHWM belongs to the program it
# runs, while the kernel's ru_maxrss keeps the high-water mark of whatever forked it (a pytest
# process of 200 MB makes every child look that big).
_PEAK = """
import atexit, sys
peak_file = sys.argv.pop(1)
def record():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(peak_file, "w") as out:
        out.write(kb)
atexit.register(record)
from warroom.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_measured(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one warroom verb; its output goes to /dev/null."""
    with tempfile.NamedTemporaryFile(prefix="warroom-peak-") as peak:
        started = time.perf_counter()
        code = subprocess.run([sys.executable, "-c", _PEAK, peak.name, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL).returncode
        elapsed = time.perf_counter() - started
        kb = Path(peak.name).read_text()
    return elapsed, int(kb) / 1024 if kb else float("nan"), code


def verbs(plan: Path) -> dict[str, list[str]]:
    return {
        "journal --limit 10": ["journal", str(plan), "--limit", "10"],
        "journal": ["journal", str(plan)],
        "report (md)": ["report", str(plan), "-o", os.devnull],
        "report (html)": ["report", str(plan), "--format", "html", "-o", os.devnull],
    }


def main() -> None:
    print(machine())
    with tempfile.TemporaryDirectory(prefix="warroom-bench-journal-") as tmp:
        folder = Path(tmp)
        made = time.perf_counter()
        plan = make_journal(folder)
        count = sqlite3.connect(folder / "state.sqlite").execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        print(f"journal of {count:,} entries made in {time.perf_counter() - made:.1f} s")
        figures = {}
        for name, args in verbs(plan).items():
            seconds, mb, code = run_measured(args, folder)
            print(f"  {name:<20} {seconds:6.2f} s  peak RSS {mb:6.1f} MB  exit {code}")
            figures[name] = {"seconds": round(seconds, 2), "peak_mb": round(mb, 1), "exit": code}
        baseline, base_mb, _ = run_measured(["journal", str(plan), "--limit", "1"], folder)
    met = all(f["exit"] == 0 and f["peak_mb"] <= TARGET_MB and f["seconds"] <= TARGET_S[name] for name, f in figures.items())
    emit("journal_scale", {"entries": count, "verbs": figures, "baseline": {"seconds": round(baseline, 2), "peak_mb": round(base_mb, 1)},
                           "target": {"peak_mb": TARGET_MB, "seconds": TARGET_S}, "met": met})


if __name__ == "__main__":
    main()
