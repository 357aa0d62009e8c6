"""`warroom verify PLAN`: the decision record (approvals, rejections, lapses, the go/no-go) checked
link by link; an entry edited or deleted in the store is named with its journal number."""

from __future__ import annotations

import argparse
import sys

from warroom.core.decision_chain import verify
from warroom.core.exit_codes import Exit
from warroom.core.journal_kinds import CHAINED
from warroom.core.text import terminal_safe
from warroom.plan.model import Plan
from warroom.store import open_store
from warroom.store.base import StoreMissing
from warroom.store.paths import state_path


def cmd_verify(plan: Plan, args: argparse.Namespace) -> int:
    path = state_path(plan, args.state)
    try:
        store = open_store(path, create=False)
    except StoreMissing:
        print(f"warroom: {path}: no journal here (nothing has run with this state yet)", file=sys.stderr)
        return Exit.PROBLEM
    head = str(store.load_state()[1].get("chain") or "")
    rows = ((e.seq, e.kind, e.message, e.data) for e in store.iter_entries(kinds=CHAINED))
    checked, breaks = verify(rows, head)
    if not breaks:
        print(f"{terminal_safe(plan.rollout.name)}: the decision record is intact ({checked} decision entries, each linked to the one before)")
        return Exit.OK
    for b in breaks:
        where = f"journal entry {b.seq}" if b.seq else "after the last decision entry"
        print(f"warroom: {where}: {b.problem}", file=sys.stderr)
    print(f"warroom: the decision record of {terminal_safe(plan.rollout.name)} was altered: {len(breaks)} break(s) in "
          f"{checked} decision entries", file=sys.stderr)
    return Exit.PROBLEM
