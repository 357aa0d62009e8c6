"""`make bench`: run every bench script, collect their FIGURE lines, and rewrite the
generated table in docs/performance.md (the hand-written notes below it are kept)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from common import BENCH, ROOT, machine, scripts

DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def describe(fig: dict) -> tuple[str, str, str]:
    """(result, baseline, target) as text for the table."""
    name = fig["name"]

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    def spread(f: dict) -> str:
        return f"median {ms(f['median'])} (min {ms(f['min'])}, max {ms(f['max'])}, n={f['n']})"

    if name == "start_to_frame":
        return (f"{spread(fig)} = {fig['ratio']:.2f}× the hello-world (attaching to a running engine)",
                f"hello-world median {ms(fig['baseline'])}", f"≤ {fig['target']:g}× hello-world (goal {fig.get('goal', 1.3):g}×)")
    if name == "consoles_query_rate":
        return (f"{fig['with']:.2f} queries/s with {fig['consoles']} consoles open = {fig['ratio']:.2f}× the rate with none",
                f"no console: {fig['baseline']:.2f} queries/s", "1.0× (one engine's rate, ±10 %)")
    if name == "page_viewers":
        return (f"page load p50 {ms(fig['median'])}, p99 {ms(fig['p99'])}, max {ms(fig['max'])} over {fig['n']} loads "
                f"({fig['waves']} waves of {fig['viewers']} viewers at once, each following the live stream)",
                f"one viewer alone p99 {fig['baseline'] * 1000:.1f} ms", f"p99 ≤ {ms(fig['target'])}, every load 200")
    if name == "page_source_load":
        (prom, flags), (prom0, flags0) = fig["with"], fig["baseline"]
        return (f"with {fig['viewers']} viewers: Prometheus {prom:.2f} queries/s ({fig['prometheus']:.2f}×), flag service "
                f"{flags:.2f} requests/s ({fig['flags']:.2f}×)", f"no viewer: {prom0:.2f} queries/s, {flags0:.2f} requests/s",
                "1.0× (one engine's rate, ±10 %)")
    if name == "consoles_idle_cpu":
        return (f"per console median {fig['median']:.2f} % of a core (max {fig['max']:.2f} %) over {fig['window_s']:g} s, "
                f"{fig['consoles']} consoles on one engine", f"hello-world {fig['baseline']:.2f} %", f"≤ {fig['target']:g} % each")
    if name == "breach_to_off":
        return (f"{spread(fig)}, p99 {ms(fig['p99'])}", f"poll interval {fig['baseline']:g} s", f"≤ {fig['target']:g} s (every run)")
    if name == "key_rollback":
        return (f"p50 {ms(fig['median'])}, p99 {ms(fig['p99'])}, max {ms(fig['max'])} over {fig['n']} presses (console → store → engine)",
                f"bare client write + read-back p50 {fig['baseline'] * 1000:.1f} ms", f"p99 ≤ {ms(fig['target'])}")
    if name == "key_rollback_postgres":
        return (f"p50 {ms(fig['median'])}, p99 {ms(fig['p99'])}, max {ms(fig['max'])} over {fig['n']} presses (console → PostgreSQL "
                "→ NOTIFY → engine)", f"SQLite store p99 {ms(fig['baseline'])} (same presses, interleaved)", f"p99 ≤ {ms(fig['target'])}")
    if name.startswith("rollback_after_flood_"):
        return (f"{spread(fig)} from the engine taking commands again to the rollback's intent, {fig['queued']:,} commands "
                f"queued ahead ({name.rpartition('_')[2]})", f"nothing queued ahead: median {ms(fig['baseline'])}",
                f"≤ {ms(fig['target'])} (every run)")
    if name == "approval_to_step":
        return (f"{spread(fig)}, p99 {ms(fig['p99'])} from an operator's approval (PostgreSQL, own role) to the step's flags read back",
                f"a command answered at once: median {ms(fig['baseline'])}", f"p99 ≤ {ms(fig['target'])} (one poll + 150 ms)")
    if name == "takeover":
        return (f"{spread(fig)} from SIGKILL of the driver to the standby driving (PostgreSQL, lease TTL {fig['ttl']:g} s)",
                f"lease TTL + one standby poll = {fig['baseline']:g} s", f"≤ {fig['target']:g} s (every run)")
    if name == "idle_cpu":
        sl = fig["slices"]
        return (f"{fig['value']:.2f} % of one core over {fig['window_s']:g} s (10-s slices {sl['min']:.2f}–{sl['max']:.2f} %)",
                f"hello-world {fig['baseline']:.2f} %", f"≤ {fig['target']:g} %")
    if name == "terminal_bytes":
        sl = fig["slices"]
        return (f"{fig['value'] / 1024:.2f} KB/s (10-s slices {sl['min'] / 1024:.2f}–{sl['max'] / 1024:.2f} KB/s)",
                f"hello-world {fig['baseline'] / 1024:.2f} KB/s", f"≤ {fig['target'] / 1024:g} KB/s")
    if name == "memory":
        return (f"{fig['rss_half']:.1f} MB after {fig['hours'] / 2:g} h of fast time, {fig['rss_end']:.1f} MB after {fig['hours']:g} h; "
                f"slope over the last {fig['hours'] / 2:g} h {fig['slope_mb_per_hour']:+.2f} MB/h",
                f"bare import {fig['baseline']:.1f} MB", "≤ 100 MB, no growth")
    if name == "scale":
        t, s, f = fig["tick"], fig["slowest_query"], fig["floor"]
        return (f"tick median {ms(t['median'])} (min {ms(t['min'])}, max {ms(t['max'])}) = {fig['ratio']:.1f}× the slowest query; "
                f"{fig['ratio_vs_floor']:.2f}× the server's floor",
                f"slowest single query {s['median'] * 1000:.1f} ms; server's floor (all {fig['panes']}+ queries at once from curl) {ms(f['median'])}",
                f"≤ {fig['target']:g}× slowest query")
    if name == "journal_scale":
        verbs = "; ".join(f"`{verb}` {v['seconds']:.1f} s, {v['peak_mb']:.0f} MB" for verb, v in fig["verbs"].items())
        return (f"{fig['entries']:,} entries: {verbs} (peak RSS)",
                f"`journal --limit 1` {fig['baseline']['seconds']:.2f} s, {fig['baseline']['peak_mb']:.0f} MB",
                f"≤ {fig['target']['peak_mb']} MB each; `journal --limit 10` ≤ {fig['target']['seconds']['journal --limit 10']:g} s, "
                f"report ≤ {fig['target']['seconds']['report (md)']:g} s")
    return (json.dumps({k: v for k, v in fig.items() if k not in {"name", "met", "target", "baseline"}}),
            str(fig.get("baseline", "")), str(fig.get("target", "")))


def main() -> int:
    figures = []
    for script in scripts():
        print(f"== {script.name}", flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=BENCH)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr[-2000:])
        lines = [line for line in proc.stdout.splitlines() if line.startswith("FIGURE ")]
        if proc.returncode != 0 or not lines:
            figures.append({"name": script.stem, "error": f"exit {proc.returncode}"})
            continue
        figures.extend(json.loads(line[len("FIGURE "):]) for line in lines)  # a script may measure several figures
    rows = ["| figure | result | baseline (same run) | target | met |", "|---|---|---|---|---|"]
    for fig in figures:
        if "error" in fig:
            rows.append(f"| {fig['name']} | script failed ({fig['error']}) | | | no |")
            continue
        result, baseline, target = describe(fig)
        rows.append(f"| {fig['name']} | {result} | {baseline} | {target} | {'yes' if fig.get('met') else 'NO'} |")
    table = "\n".join([BEGIN, f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}.", "", *rows, END])
    text = DOC.read_text() if DOC.exists() else "# Performance\n\n" + BEGIN + "\n" + END + "\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(head + table + tail)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
