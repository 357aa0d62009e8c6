"""How far `warroom down` reaches, in the words engines and clients share.

`down` asks the driving engine to stop through the store. The driver journals its stop with
the scope it was asked for; an engine standing by reads that entry and stops too when it is
within reach — every engine of the rollout, or (`down --here`, a host's systemd unit) only
those of the driver's host, so that a standby elsewhere takes over.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any


class StopScope(str, Enum):  # noqa: UP042  (as State: a str() of the value, stored in JSON)
    ROLLOUT = "rollout"  # every engine of the rollout, on every host
    HOST = "host"  # the engines of one host: a standby elsewhere takes over

    def data(self, host: str) -> dict[str, str]:
        """What the driver's stop entry carries, for the standbys to read."""
        return {"scope": self.value, "host": host}


def reaches(data: Mapping[str, Any], host: str) -> bool:
    """Whether a journaled stop (its data) tells an engine standing by on `host` to stop too."""
    scope = data.get("scope")
    return scope == StopScope.ROLLOUT.value or (scope == StopScope.HOST.value and data.get("host") == host)
