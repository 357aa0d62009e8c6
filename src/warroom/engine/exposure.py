"""The exposure check: is the new cohort receiving traffic, and its planned share of it?

A flag that never reaches the service (a wrong environment, an SDK that caches, a proxy
that strips the header) makes every guardrail judge the old code and a launch look
healthy while nobody runs the new one. The plan's `exposure:` query counts the units the
flag assigns (users, sessions) per cohort in a window; the new cohort's share is tested
against the flag's percentage with a sample-ratio-mismatch test (chi-square, one degree
of freedom). Anything but a match blocks the step up — a gate every phase has without
writing it — and a change of verdict is journaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warroom.core.flagstate import FlagState
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import ExposureView
from warroom.core.stats import sample_ratio_test
from warroom.core.statuses import ExposureStatus
from warroom.core.units import format_duration
from warroom.engine.cohorts import QueryKey
from warroom.plan.conditions import ExposureCheck
from warroom.plan.model import Plan
from warroom.sources.base import Reading


def share_text(share: float) -> str:
    """`24.6%`, `0.10%`, `0%`: a share as the check prints it."""
    percent = share * 100
    if percent == 0:
        return "0%"
    # Two decimals below 1% (0.10%), one above; 0.9996% reads 1.0% like 1.0004% does, not 1.00%.
    return f"{percent:.2f}%" if round(percent, 2) < 1 else f"{percent:.1f}%"


class Exposure:
    def __init__(self, plan: Plan, config: ExposureCheck):
        self.config = config
        self.flag = config.flag or plan.driving_flag() or ""
        source = config.source or plan.default_source()
        self.keys: dict[str, QueryKey] = {c: (source, config.side(c), None) for c in ("new", "control")}
        self.status = "idle"  # the last verdict journaled

    def view(self, readings: Mapping[QueryKey, Reading], planned: FlagState | None, phase_age: float | None) -> ExposureView:
        """The check now: `planned` is the flag as the plan set it; `phase_age` the seconds since the last step."""
        share = planned.exposure if planned is not None and planned.enabled else 0.0
        plan = f"plan {share * 100:g}%" + (f" of {', '.join(planned.segments)}" if planned and planned.segments else "")
        if share <= 0 or phase_age is None:
            return ExposureView(ExposureStatus.IDLE, share, None, None, None, f"no cohort yet ({plan})")
        counts = {}
        for cohort, key in self.keys.items():
            reading = readings.get(key)
            if reading is None or not reading.has_value:
                why = "not polled yet" if reading is None else (reading.detail or reading.status)
                return ExposureView(ExposureStatus.NODATA, share, None, None, None, f"{cohort} cohort's units: {why} ✗")
            counts[cohort] = max(0.0, reading.value or 0.0)
        total = counts["new"] + counts["control"]
        observed = counts["new"] / total if total > 0 else None
        seen = "cohort " + (share_text(observed) if observed is not None else "—")
        if phase_age < self.config.settle:
            return ExposureView(ExposureStatus.SETTLING, share, observed, total, None,
                                f"{seen} ({plan}) — checked from {format_duration(self.config.settle)} into the phase "
                                f"({format_duration(phase_age)} now)")
        if total < self.config.min:
            return ExposureView(ExposureStatus.LOW, share, observed, total, None,
                                f"not enough traffic to check the split (n={total:.0f} < {self.config.min:.0f}) ✗")
        if counts["new"] <= 0:
            return ExposureView(ExposureStatus.NONE, share, 0.0, total, 0.0, f"cohort 0% — is the flag reaching the service? ({plan}) ✗")
        if planned is not None and planned.segments:
            # A segment's share of all units is not the plan's to know: only that some arrive.
            return ExposureView(ExposureStatus.OK, share, observed, total, None, f"{seen} ({plan}) ✓")
        test = sample_ratio_test(counts["new"], counts["control"], share)
        if test.p_value < self.config.false_alarm:
            return ExposureView(ExposureStatus.MISMATCH, share, observed, total, test.p_value,
                                f"{seen} ({plan}) ✗ sample-ratio mismatch, p={test.p_value:.2g} < {self.config.false_alarm:g}")
        return ExposureView(ExposureStatus.OK, share, observed, total, test.p_value, f"{seen} ({plan}) ✓")

    def news(self, view: ExposureView) -> tuple[Kind, str, dict[str, Any]] | None:
        """The journal entry (kind, message, data) when the verdict moved between a match and a
        mismatch since the last call; None otherwise (a first match is no news)."""
        judged = {ExposureStatus.OK: "ok", ExposureStatus.MISMATCH: "bad", ExposureStatus.NONE: "bad"}.get(view.status)
        if judged is None or judged == self.status:
            return None
        first, self.status = self.status == "idle", judged
        if first and judged == "ok":
            return None
        data = {"status": view.status, "planned": view.planned, "observed": view.observed, "n": view.n, "p_value": view.p_value}
        if judged == "ok":
            return Kind.EXPOSURE_OK, f"exposure check: {view.text} again", data
        return Kind.EXPOSURE_MISMATCH, f"exposure check: {view.text}; step up blocked until the split matches", data
