"""The unit pre-pass: thresholds written with a unit (`1%`, `500ms`, `+0.5pp`, `×2`) in their pane's unit.

Runs on the YAML's plain data before validation, since a threshold's unit is its pane's:
`above: 500ms` on a seconds pane is 0.5, on an ms pane 500. Anything it cannot read is
left as it was for the model to refuse with its own message; it never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from warroom.core.units import parse_duration
from warroom.plan.problems import suggestion
from warroom.plan.yamlfile import Loc

_PERCENT = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*%\s*")
_POINTS = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*pp\s*")
_TIMES = re.compile(r"\s*[×x*]?\s*(\d+(?:\.\d+)?)\s*[×x]?\s*")


def _in_unit(value: Any, unit: str, percent: re.Pattern[str] = _PERCENT) -> Any:
    """A threshold written with its unit (`1%`, `500ms`), in the pane's unit; anything else as it was.
    With `percent=_POINTS`, a comparison's difference: `+0.5pp` (percentage points) or `-50ms`, sign kept."""
    if not isinstance(value, str):
        return value
    match = percent.fullmatch(value)
    if match and unit in ("ratio", "percent"):
        return float(match.group(1)) / (100 if unit == "ratio" else 1)
    if unit in ("seconds", "ms"):
        text = value.strip()
        try:
            seconds = parse_duration(text.lstrip("+-"))
        except ValueError:
            return value
        return (-1.0 if text.startswith("-") else 1.0) * seconds * (1000 if unit == "ms" else 1)
    return value


def _ratio(value: Any) -> Any:
    """`×2`, `x2`, `2x` → 2.0; anything else as it was."""
    times = _TIMES.fullmatch(value) if isinstance(value, str) else None
    return float(times.group(1)) if times else value


def _comparison_in_units(cond: dict[str, Any], units: dict[str, str]) -> None:
    """A comparison's limits written with units, in the unit of its numbers (its own, else its pane's)."""
    compare, pane = cond["compare"], cond.get("pane")
    # Only text is a unit or a pane id here: anything else (a list, say) is the model's to refuse.
    unit = compare.get("unit") if isinstance(compare.get("unit"), str) else units.get(pane, "count") if isinstance(pane, str) else "count"
    for key in ("above", "below"):
        if key in cond:
            cond[key] = _in_unit(cond[key], unit)
    if "difference" in compare:
        compare["difference"] = _in_unit(compare["difference"], unit, _POINTS)
    if "ratio" in compare:
        compare["ratio"] = _ratio(compare["ratio"])


@dataclass(frozen=True)
class PaneRefs:
    """The pane ids a plan defines (id and location) and every guardrail's and gate's reference to one."""

    ids: list[tuple[Loc, str]]
    refs: list[tuple[Loc, str]]  # (the condition's location, the pane it names)

    @property
    def unknown(self) -> list[tuple[Loc, str]]:
        known = {pane for _, pane in self.ids}
        return [(loc, pane) for loc, pane in self.refs if pane not in known]


def _pane_key(cond: dict[str, Any], units: dict[str, str]) -> str | None:
    """The pane a condition names, also under a misspelt key (`pnae: errors`): the typo is reported
    as an unknown key, and its threshold (`above: 1%`) still reads in that pane's unit, not blamed too."""
    if "pane" in cond:
        return cond["pane"] if isinstance(cond["pane"], str) else None
    for key, value in cond.items():
        if isinstance(key, str) and isinstance(value, str) and value in units and suggestion(key, ["pane"]):
            return value
    return None


def thresholds_in_pane_units(data: dict[str, Any]) -> PaneRefs:
    """Convert thresholds written with a unit, so `above: 500ms` means what it says on a seconds pane.

    Returns the panes defined and referenced: a guardrail or gate naming a pane the plan does not
    have has no unit for its threshold, so the missing pane is the problem to report, not the threshold.
    """
    panes = data.get("panes")
    units: dict[str, str] = {}
    ids: list[tuple[Loc, str]] = []
    for i, pane in enumerate(panes if isinstance(panes, list) else []):
        if isinstance(pane, dict) and isinstance(pane.get("id"), str):
            ids.append((("panes", i, "id"), pane["id"]))
            unit = units[pane["id"]] = pane.get("unit", "count") if isinstance(pane.get("unit"), str) else ""
            for key in ("warn", "breach"):
                if key in pane:
                    pane[key] = _in_unit(pane[key], unit)
    guardrails = data.get("guardrails")
    conditions: list[tuple[Loc, Any]] = [(("guardrails", i), g) for i, g in enumerate(guardrails if isinstance(guardrails, list) else [])]
    phases = data.get("phases")
    for pi, phase in enumerate(phases if isinstance(phases, list) else []):
        if isinstance(phase, dict) and isinstance(phase.get("gates"), list):
            conditions += [(("phases", pi, "gates", gi), gate) for gi, gate in enumerate(phase["gates"])]
    refs: list[tuple[Loc, str]] = []
    for loc, cond in conditions:
        if not isinstance(cond, dict):
            continue
        pane = _pane_key(cond, units)
        if isinstance(cond.get("pane"), str):
            refs.append((loc, cond["pane"]))
        if isinstance(cond.get("compare"), dict):
            _comparison_in_units(cond, units)
        elif pane is not None:
            for key in ("above", "below"):
                if key in cond:
                    cond[key] = _in_unit(cond[key], units.get(pane, ""))
    return PaneRefs(ids, refs)
