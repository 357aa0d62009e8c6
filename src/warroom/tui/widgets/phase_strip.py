"""Where the launch stands, in one line (like the Argo Rollouts plugin's tree):

    5% ✔ → [25% ◉ soak 12m/1h ▓▓░ required 3/9] → 50 → 75 → 100

It gives up detail to fit (the phase name, gates, the soak bar, then the phases
around the current one) but never the current phase's exposure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from warroom.core.snapshot import Snapshot, State
from warroom.core.units import plan_duration
from warroom.tui.clock_text import compact_duration


@dataclass(frozen=True)
class Detail:
    """How much the strip says; tried from the most to the least."""

    name: bool = True
    gates: bool = True
    bar: int = 5
    required: str = "required"
    around: bool = True  # every phase before and after (else ✔×n and the last one)


LEVELS = (Detail(), Detail(gates=False, bar=3), Detail(name=False, gates=False, bar=3, required="req"),
          Detail(name=False, gates=False, bar=0, required="req"),
          Detail(name=False, gates=False, bar=0, required="req", around=False))


def short(exposure: str) -> str:
    """A later phase's exposure, lighter: `50` for `50%`."""
    return exposure.removesuffix("%") if exposure.count("%") == 1 else exposure


def bar(fraction: float, cells: int) -> str:
    full = round(max(0.0, min(1.0, fraction)) * cells)
    return "▓" * full + "░" * (cells - full)


def current_exposure(snap: Snapshot) -> str:
    """What users see of the new code now: the launch flags as they read back (`absent` exposes
    nobody; an unreadable one is `?`), `0%` once every one is off. A flag the phases never move
    (a health check on throughout, kept on by the rollback) is no exposure."""
    launch = set(snap.launch_flags) or {f.name for f in snap.flags}
    shown = []
    for flag in snap.flags:
        if flag.name not in launch:
            continue
        if flag.error:
            shown.append("?")
        elif flag.observed is not None and flag.observed.enabled:
            shown.append(flag.observed.label())
    return "/".join(dict.fromkeys(shown)) or "0%"


ROLES = ("done", "current", "next", "note", "sep")  # how the banner styles each piece (banner.py)


def strip_parts(snap: Snapshot, now: float, detail: Detail) -> list[tuple[str, str]]:
    """(text, role) pieces; roles: done, current, next, note, sep."""
    exposures = snap.phase_exposures or tuple(str(i + 1) for i in range(snap.phase_count))
    total = len(exposures)
    index = snap.phase.index if snap.phase else 0
    state = snap.state
    parts: list[tuple[str, str]] = []
    if state.in_rollback:
        back = snap.rollback
        exposure = current_exposure(snap)
        word = "rolled back" if state == State.ROLLED_BACK else "rolling back"
        parts.append((f"[exposure {exposure}{'' if exposure == '0%' else ' → 0%'} ⟲ {word}]", "current"))
        source = back.from_phase if back else index
        if source and detail.name:
            parts.append((f" from {source}/{total} {snap.phase_names[source - 1]}", "note"))
        elif source:
            parts.append((f" from {source}/{total} {exposures[source - 1]}", "note"))
        if state == State.ROLLED_BACK and detail.gates and total:
            parts.append((f" · retry restarts at 1/{total} {exposures[0]}", "note"))
        return parts

    # With no engine nothing soaks the phase: its clock stops where the engine left it.
    soaked_to = now if snap.automation else min(now, snap.now)
    if detail.name and snap.phase is not None:
        parts.append((f"{index}/{total} {snap.phase.name}  ", "note"))
    elif snap.phase is not None:
        parts.append((f"{index}/{total} ", "note"))
    done = list(range(1, index if state != State.COMPLETE else index + 1))
    later = list(range(index + 1, total + 1)) if state != State.COMPLETE else []
    if not detail.around and len(done) > 1:
        parts += [(f"✔×{len(done)}", "done"), (" → ", "sep")]
    else:
        for i in done:
            parts += [(f"{exposures[i - 1]} ✔", "done"), (" → ", "sep")]
    if state == State.COMPLETE:
        parts[-1:] = [(" ", "sep"), ("[complete]", "current")]
    elif snap.phase is None:
        parts.append(("[0% ○ not started]", "current"))
    else:
        phase = snap.phase
        box = [f"{exposures[index - 1]} ◉"]
        started = phase.started_at if phase.started_at is not None else soaked_to
        elapsed = max(0.0, soaked_to - started)
        if phase.hold and elapsed < phase.hold:
            box.append(f"soak {compact_duration(elapsed)}/{compact_duration(phase.hold)}" + (f" {bar(elapsed / phase.hold, detail.bar)}" if detail.bar else ""))
        else:
            box.append(f"soak ✔ {compact_duration(elapsed)}")
        if phase.planned_hold is not None:  # a drill shortened the plan's soak: say so, or 30s reads as the plan's
            box.append(f"({plan_duration(phase.planned_hold)} → {plan_duration(phase.hold)} in this drill)" if detail.gates else "(drill)")
        if detail.gates and phase.gates:
            box.append(f"gates {sum(g.passed is True for g in phase.gates)}/{len(phase.gates)}")
        required = [i for i in phase.checklist if i.required]
        if required:
            box.append(f"{detail.required} {sum(i.ticked for i in required)}/{len(required)}")
        parts.append(("[" + " ".join(box) + "]", "current"))
    if later and not detail.around and len(later) > 2:
        later = [later[0], later[-1]]
        parts += [(" → ", "sep"), (short(exposures[later[0] - 1]), "next"), (" … ", "sep"), (short(exposures[later[1] - 1]), "next")]
    else:
        for i in later:
            parts += [(" → ", "sep"), (short(exposures[i - 1]), "next")]
    return parts


def strip_text(snap: Snapshot, now: float, width: int, styles: Mapping[str, Style | str] | None = None) -> Text:
    """The most detailed strip that fits `width` cells (the least detailed one otherwise, cut)."""
    styles = styles or {}
    for detail in LEVELS:
        parts = strip_parts(snap, now, detail)
        if sum(cell_len(t) for t, _ in parts) <= width:
            break
    runs: list[tuple[str, Style | str]] = []
    for text, role in parts:  # one span per run of a style: fewer bytes over SSH each second
        style = styles.get(role, "")
        if runs and runs[-1][1] == style:
            runs[-1] = (runs[-1][0] + text, style)
        else:
            runs.append((text, style))
    return Text.assemble(*runs, no_wrap=True, overflow="ellipsis")
