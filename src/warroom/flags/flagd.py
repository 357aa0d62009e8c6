"""The `flagd` provider: a flagd flag definition file (https://flagd.dev/reference/flag-definitions/).

warroom rewrites only the flags the plan names, atomically, and keeps every other
flag and top-level key (`$schema`, `$evaluators`) as it found them. A flag it owns is
boolean, with variants `on: true` / `off: false`:

  enabled at 25 %  {"state": "ENABLED", "defaultVariant": "off",
                    "targeting": {"fractional": [["on", 25], ["off", 75]]}}
  with segments    targeting {"if": [{"in": [{"var": "segment"}, ["beta"]]}, {"fractional": …}, "off"]}
  at 100 %         {"state": "ENABLED", "defaultVariant": "on"} (no targeting)
  off              {"state": "DISABLED", "defaultVariant": "off"} (no targeting)

flagd's fractional weights are integers, so 0.1 % is written as [["on", 1], ["off", 999]].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from warroom.core.flagstate import FlagState
from warroom.flags import files
from warroom.flags.base import Capabilities, FlagError, ProviderConfig

ON, OFF = "on", "off"


class FlagdConfig(ProviderConfig):
    provider: Literal["flagd"]
    path: files.FlagFilePath
    # The evaluation-context attribute segments are matched against.
    segment_attribute: str = "segment"


def weights(rollout: float) -> tuple[int, int]:
    """Integer (on, off) weights for a percentage: the smallest total of 100, 1000 or 10000 that is exact."""
    for total in (100, 1_000, 10_000):
        on = rollout * total / 100
        if abs(on - round(on)) < 1e-9:
            break
    return round(on), total - round(on)


class FlagdFlagProvider(files.FileFlagProvider):
    kind = "flagd"
    capabilities = Capabilities(rollout_step=0.01, segments=True)  # integer weights out of at most 10,000
    Config = FlagdConfig
    what = "flagd flag definitions"
    shape_error = 'not a flagd definition file (expected {"flags": {…}})'

    def __init__(self, config: FlagdConfig, base_dir: Path):
        super().__init__(config, base_dir)
        self.attribute = config.segment_attribute

    def describe(self) -> str:
        return f"flagd file {self.path}"

    def _fractional(self, name: str, rule: Any, variants: dict[str, Any]) -> float:
        """Percentage of the `on` variants in a fractional rule, or a bare variant name."""
        if isinstance(rule, str):
            return 100.0 if variants.get(rule) is True else 0.0
        args = rule.get("fractional") if isinstance(rule, dict) and len(rule) == 1 else None
        if not isinstance(args, list):
            raise FlagError(f"{self.path}: flag {name} has targeting warroom does not manage; "
                            "rewrite it with warroom or take it out of the plan")
        # A leading non-list argument is the bucketing expression; weights default to 1.
        buckets = [a for a in args if isinstance(a, list) and a]
        on = sum(b[1] if len(b) > 1 else 1 for b in buckets if variants.get(b[0]) is True)
        total = sum(b[1] if len(b) > 1 else 1 for b in buckets)
        return 100.0 * on / total if total > 0 else 0.0

    def _state(self, name: str, entry: Any) -> FlagState | None:
        if entry is None:
            return None
        if not isinstance(entry, dict) or entry.get("state") not in ("ENABLED", "DISABLED"):
            raise FlagError(f"{self.path}: flag {name} has no state ENABLED or DISABLED")
        if entry["state"] == "DISABLED":
            return FlagState(False, 0.0)
        variants: dict[str, Any] = found if isinstance(found := entry.get("variants"), dict) else {}
        targeting = entry.get("targeting") or None
        if targeting is None:
            return FlagState(True, self._fractional(name, entry.get("defaultVariant"), variants))
        condition = targeting.get("if") if isinstance(targeting, dict) and len(targeting) == 1 else None
        if isinstance(condition, list) and len(condition) == 3:
            test = condition[0].get("in") if isinstance(condition[0], dict) else None
            if (isinstance(test, list) and len(test) == 2 and test[0] == {"var": self.attribute}
                    and isinstance(test[1], list) and variants.get(condition[2]) is False):
                return FlagState(True, self._fractional(name, condition[1], variants), tuple(map(str, test[1])))
        return FlagState(True, self._fractional(name, targeting, variants))

    def _entry(self, old: dict[str, Any], state: FlagState) -> dict[str, Any]:
        # Keys we do not manage (metadata, a description) stay.
        entry = {**old, "state": "ENABLED" if state.enabled else "DISABLED", "variants": {ON: True, OFF: False}}
        # Old targeting may name variants that no longer exist; a disabled flag needs none.
        entry.pop("targeting", None)
        if not state.enabled or (state.rollout >= 100 and not state.segments):
            entry["defaultVariant"] = ON if state.enabled else OFF
            return entry
        entry["defaultVariant"] = OFF
        on, off = weights(state.rollout)
        rule: dict[str, Any] = {"fractional": [[ON, on], [OFF, off]]}
        if state.segments:
            rule = {"if": [{"in": [{"var": self.attribute}, list(state.segments)]}, rule, OFF]}
        entry["targeting"] = rule
        return entry
