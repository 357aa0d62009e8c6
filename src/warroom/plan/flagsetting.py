"""A flag's setting as a plan writes it: `25`, `25%`, `on`, `off` or {enabled, rollout, segments}."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from warroom.core.flagstate import FlagState
from warroom.plan.fields import Percent, Strict


class FlagSetting(Strict):
    enabled: bool = True
    rollout: Percent = 100.0
    segments: tuple[str, ...] = ()

    def as_state(self) -> FlagState:
        """What a provider is asked to set (a disabled flag exposes nobody, whatever its percentage)."""
        return FlagState(self.enabled, self.rollout if self.enabled else 0.0, tuple(self.segments))


FLAG_HELP = "a rollout percentage 0–100 (25 or 25%), on or off, or {enabled, rollout, segments}"


def _flag_shorthand(value: Any) -> Any:
    # `realtime-features: 25` (or "25%", as launch plans write it) means enabled at 25 %;
    # `off`/`false` means disabled.
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*%\s*", value):
        value = float(value.strip().rstrip("%"))
    if isinstance(value, bool):
        return {"enabled": value, "rollout": 100.0 if value else 0.0}
    if isinstance(value, (int, float)):
        return {"enabled": value > 0, "rollout": value}
    if not isinstance(value, dict):
        raise ValueError(f"expected {FLAG_HELP}")
    return value


FlagValue = Annotated[FlagSetting, BeforeValidator(_flag_shorthand)]
