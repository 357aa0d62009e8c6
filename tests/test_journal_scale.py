"""`journal` and `report` on a real SQLite journal of a million entries finish in bounded memory.

No timing is asserted here (bench/journal_scale.py measures it for docs/performance.md):
the bound is on each process's peak RSS (its VmHWM as it exits), against the audit's
1.4 GB (`journal --limit 10`) and 2 GB (`report`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from journal_scale import make_journal, run_measured, verbs  # noqa: E402

PEAK_MB = 150  # a bare `warroom journal --limit 1` is ≈ 40 MB


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> Path:
    return make_journal(tmp_path_factory.mktemp("million"), 1_000_000)


@pytest.mark.slow
@pytest.mark.parametrize("verb", list(verbs(Path("plan.yaml"))))
def test_a_million_entry_journal_reads_in_bounded_memory(million, verb):
    args = verbs(million)[verb]
    if args[0] == "report":
        out = million.parent / f"report-{len(args)}"
        args = [*args[:-1], str(out)]
    _, peak_mb, code = run_measured(args, million.parent)
    assert code == 0
    assert peak_mb < PEAK_MB, f"{verb}: peak RSS {peak_mb:.0f} MB"
    if args[0] == "report":
        with out.open(encoding="utf-8") as f:
            head = f.read(20_000)
        assert "125000" in head  # every breach spell counted, not only those held in memory
        assert "ROLLED BACK" in head


@pytest.mark.slow
def test_journal_limit_is_the_newest_entries_in_order(million):
    out = subprocess.run([sys.executable, "-m", "warroom", "journal", str(million), "--limit", "3"], capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()
    # The launch ended with a rollback; then the engine that ran it was stopped (`warroom down`).
    assert [line.split()[1] for line in out] == ["rollback.step", "rollback.outcome", "engine.stop"]
