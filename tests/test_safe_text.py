"""The console makes outside text terminal-safe once per snapshot (tui/safe_text.py): what has nothing
to clean is kept as the very object, what has is cleaned and the original left as it was."""

from __future__ import annotations

from warroom.core.snapshot import JournalEntry
from warroom.tui.safe_text import clean


def test_text_with_nothing_to_clean_is_kept_as_it_is_and_hostile_text_is_cleaned():
    entry = JournalEntry(1, 0.0, "pause", "paused by alice", "alice", None, {"reason": "slow", "panes": ["p99", (1, 2)]})
    assert clean(entry) is entry
    hostile = JournalEntry(2, 0.0, "pause", "paused \x1b[2J by alice", "alice", None, {"reason": "a\x07b", "n": 3})
    cleaned = clean(hostile)
    assert cleaned.message == "paused  by alice" and cleaned.data == {"reason": "ab", "n": 3}
    assert hostile.data == {"reason": "a\x07b", "n": 3}  # the snapshot it came from is left as it was
