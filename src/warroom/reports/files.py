"""`warroom report`: the post-mortem written out, as Markdown or one HTML file, streamed."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from warroom.plan.model import Plan
from warroom.reports.html import html
from warroom.reports.markdown import markdown
from warroom.reports.postmortem import Report, build_report
from warroom.store import open_store
from warroom.store.base import StoreMissing
from warroom.store.paths import StateRef


def to_markdown(r: Report) -> str:
    return "".join(markdown(r))


def to_html(r: Report) -> str:
    return "".join(html(r))


def _write(chunks: Iterable[str], out: TextIO) -> None:
    for chunk in chunks:
        out.write(chunk)


def run_report_command(plan: Plan, db: StateRef, *, fmt: str, output: str | None) -> int:
    try:
        store = open_store(db, create=False, readonly=True)  # a reader: a backup on a read-only file system opens too
    except StoreMissing:
        print(f"warroom: {db}: no journal here (give the drill's or launch's --state)", file=sys.stderr)
        return 1
    report = build_report(plan, store)
    if not report.count:
        print(f"warroom: {db}: the journal is empty", file=sys.stderr)
        return 1
    chunks = html if fmt == "html" else markdown
    if output:
        with open(output, "w", encoding="utf-8") as out:
            _write(chunks(report), out)
        print(f"wrote {output} ({fmt}, {report.count} journal entries)")
    else:
        _write(chunks(report), sys.stdout)
    return 0
