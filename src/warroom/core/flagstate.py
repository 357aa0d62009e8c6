"""A flag's state (on at a percentage, for segments): the value engines, snapshots and consoles share.

Kept apart from the flag providers so a console can show flags without importing any
provider (or the HTTP libraries they bring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FlagState:
    enabled: bool
    rollout: float = 100.0  # percent of users when enabled
    segments: tuple[str, ...] = ()

    @property
    def exposure(self) -> float:
        """Share of traffic that sees the feature, 0..1."""
        return self.rollout / 100.0 if self.enabled else 0.0

    def matches(self, other: FlagState) -> bool:
        if self.enabled != other.enabled:
            return False
        if not self.enabled:
            return True  # a disabled flag's percentage does not expose anyone
        return math.isclose(self.rollout, other.rollout, abs_tol=0.01) and set(self.segments) == set(other.segments)

    def label(self) -> str:
        if not self.enabled:
            return "off"
        text = f"{self.rollout:g}%"
        if self.segments:
            text += " [" + ",".join(self.segments) + "]"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "rollout": self.rollout, "segments": list(self.segments)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlagState:
        return cls(bool(data["enabled"]), float(data.get("rollout", 100.0)), tuple(data.get("segments", ())))
