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

    @property
    def exposes_nobody(self) -> bool:
        return not self.enabled or self.rollout <= 0

    def matches(self, other: FlagState) -> bool:
        """Both expose the same users. Off and on at 0 % both expose nobody: a rollback while the flag
        service refuses switching off (Unleash's maintenance mode) sets 0 %, and that is rolled back."""
        if self.exposes_nobody or other.exposes_nobody:
            return self.exposes_nobody and other.exposes_nobody
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
