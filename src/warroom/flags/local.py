"""The built-in `local` flag store: one JSON file, replaced atomically and fsynced.

The file uses the seeds' flag shape so a team can read it at a glance:
{"flags": {"realtime-features": {"enabled": true, "rollout_percentage": 25, "user_segments": []}}}
"""

from __future__ import annotations

from typing import Any, Literal

from warroom.core.flagstate import FlagState
from warroom.flags import files
from warroom.flags.base import Capabilities, FlagError, ProviderConfig


class LocalConfig(ProviderConfig):
    provider: Literal["local"]
    path: files.FlagFilePath = "flags.json"


class LocalFlagProvider(files.FileFlagProvider):
    kind = "local"
    capabilities = Capabilities(rollout_step=0, segments=True)  # JSON numbers: any percentage
    Config = LocalConfig
    what = "flag store"
    shape_error = 'expected {"flags": {…}}'

    def describe(self) -> str:
        return f"local file {self.path}"

    def _state(self, name: str, entry: Any) -> FlagState | None:
        if entry is None:
            return None
        try:
            return FlagState(
                bool(entry["enabled"]),
                float(entry.get("rollout_percentage", 100.0)),
                tuple(entry.get("user_segments", ())),
            )
        except (KeyError, TypeError, ValueError):
            raise FlagError(f"{self.path}: flag {name} is malformed") from None

    def _entry(self, old: dict[str, Any], state: FlagState) -> dict[str, Any]:
        return {**old, "enabled": state.enabled, "rollout_percentage": state.rollout, "user_segments": list(state.segments)}
