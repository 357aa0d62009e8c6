"""The metrics source interface: where the numbers come from.

A source answers one query at a time with a Reading and never raises: a failure is a
Reading with an error, so one bad query cannot take the others' panes down with it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from warroom.flags.base import FlagState

ReadingStatus = Literal["ok", "nodata", "invalid", "error"]


@dataclass(frozen=True)
class Reading:
    status: ReadingStatus
    value: float | None = None
    # Why there is no value: "no series", "NaN", "HTTP 503: …", "timeout after 5s".
    detail: str = ""
    # For panes that show several series by a label: (label value, number) pairs.
    series: tuple[tuple[str, float], ...] = ()

    @classmethod
    def ok(cls, value: float, series: tuple[tuple[str, float], ...] = ()) -> Reading:
        return cls("ok", value, series=series)

    @classmethod
    def nodata(cls, detail: str = "no data") -> Reading:
        return cls("nodata", None, detail)

    @classmethod
    def invalid(cls, detail: str) -> Reading:
        return cls("invalid", None, detail)

    @classmethod
    def error(cls, detail: str) -> Reading:
        return cls("error", None, detail)

    @property
    def has_value(self) -> bool:
        return self.status == "ok" and self.value is not None


@dataclass(frozen=True)
class SourceContext:
    """What a source may know about the rollout when it is asked (the simulator uses it)."""

    now: float
    started_at: float
    phase: int  # 1-based; 0 before the first step up
    phase_started_at: float | None = None
    exposure: dict[str, float] = field(default_factory=dict)  # flag -> 0..1 observed
    # flag -> observed state, segments and all (the simulator models a segment's share of users)
    flags: dict[str, FlagState] = field(default_factory=dict)


class Source(ABC):
    kind: ClassVar[str]

    def __init__(self, name: str, config):
        self.name = name
        self.config = config

    @abstractmethod
    async def query(self, query: str, ctx: SourceContext, series_label: str | None = None) -> Reading:
        """Answer an instant query. Must not raise."""

    # Seconds of history to fetch with `backfill` on start; 0: the source keeps none.
    backfill_span: float = 0.0

    async def backfill(self, query: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        """History for sparklines; sources that cannot give it return nothing."""
        return []

    def static_problem(self, query: str) -> str | None:
        """A problem detectable without asking the server (used by `warroom check`)."""
        return None

    def describe(self) -> str:
        return self.kind

    async def close(self) -> None:
        return None
