"""The flag provider interface: where exposure is changed, and read back.

A provider does two things: `read` a flag's observed state and `write` a desired one.
`write_verified` turns that into the only kind of write warroom trusts: done when a
read-back shows the desired state. Retrying (and journaling each attempt) is the
engine's job, so every provider gets the same behaviour.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from warroom.core.flagstate import FlagState
from warroom.core.secrets import redact


@dataclass(frozen=True)
class Capabilities:
    """What a provider can set, declared on its class and checked against the plan before any run,
    so a plan `check` passes is one the provider can carry out."""

    # Smallest step of a percentage: 1 (whole percents, as Unleash's SDKs bucket users), 0.01, or 0 (any).
    rollout_step: float
    # Whether it can target segments: True, False, or the config field (dotted) that must be set for it.
    segments: bool | str

    def refusal(self, state: FlagState, config: Any) -> str | None:
        """Why this provider, so configured, cannot set `state`; None when it can."""
        if state.enabled and self.rollout_step and 0 < state.rollout < 100:
            steps = state.rollout / self.rollout_step
            if not math.isclose(steps, round(steps), abs_tol=1e-9):
                low = math.floor(steps) * self.rollout_step
                unit = "whole percents" if self.rollout_step == 1 else f"steps of {self.rollout_step:g}%"
                return (f"the {config.provider} provider sets {unit}, so {state.rollout:g}% cannot be set "
                        f"(write {low:g} or {low + self.rollout_step:g})")
        if state.enabled and state.segments and not self._segments(config):
            how = f"; set flag_provider.{self.segments} to the API's segments field" if isinstance(self.segments, str) else ""
            return f"the {config.provider} provider cannot target segments ({', '.join(state.segments)}){how}"
        return None

    def _segments(self, config: Any) -> bool:
        if not isinstance(self.segments, str):
            return self.segments
        value = config
        for part in self.segments.split("."):
            value = getattr(value, part, None)
        return value is not None


class Proof(Enum):
    """What `warroom check` could prove about writing a provider's flags, without changing one."""

    WRITABLE = "ok"  # the file system or the API says this provider's writes can go through
    NOT_WRITABLE = "FAIL"  # they cannot: a step up would fail and a rollback would stick retrying
    UNPROVEN = "WARN"  # nothing answers the question without writing a flag


@dataclass(frozen=True)
class Writable:
    proof: Proof
    detail: str  # what was checked, or the plain cause, naming the whole path or the token's reference


class FlagError(Exception):
    """A provider failure with a short, redacted reason (`HTTP 503`, `timeout after 5s`)."""

    def __init__(self, reason: str):
        super().__init__(redact(reason))
        self.reason = redact(reason)


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    provider: str


class FlagProvider(ABC):
    kind: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]]
    capabilities: ClassVar[Capabilities]  # every provider declares its own
    # What `warroom check` says of a flag the provider does not have yet: None means the
    # first write creates it; otherwise it is a problem, and this says what to do.
    missing_flag_problem: ClassVar[str | None] = None

    def __init__(self, config: ProviderConfig, base_dir: Any):
        self.config = config
        self.base_dir = base_dir

    @abstractmethod
    async def read(self, name: str) -> FlagState | None:
        """Observed state, or None when the provider has no such flag. Raises FlagError."""

    async def read_many(self, names: list[str]) -> dict[str, FlagState | None | FlagError]:
        """Observed state of several flags at once (every tick reads them all).

        Per-flag failures come back as FlagError values, not raised, so one bad flag does
        not hide the others. The default asks concurrently; file stores read the file once.
        """
        results = await asyncio.gather(*(self.read(n) for n in names), return_exceptions=True)
        out: dict[str, FlagState | None | FlagError] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, FlagError):
                if not isinstance(result, Exception):
                    raise result  # cancellation and the like are not flag failures
                result = FlagError(f"{type(result).__name__}: {result}")
            out[name] = result
        return out

    @abstractmethod
    async def write(self, name: str, state: FlagState) -> None:
        """Ask for a state; raises FlagError. Not trusted until read back."""

    async def write_fenced(self, name: str, state: FlagState, epoch: int | None) -> None:
        """`write`, telling the provider the writer's lease epoch where its API can use it (`http`);
        the others cannot, and the lease's margin and the next driver's read-back hold instead."""
        await self.write(name, state)

    def describe(self) -> str:
        return self.kind

    async def writable(self, names: list[str]) -> Writable:
        """Whether writes of these flags can go through, proven without changing a flag where the
        provider can be asked (a file's permissions, a token's rights)."""
        return Writable(Proof.UNPROVEN, f"the {self.kind} provider cannot be asked whether its writes would go through")

    async def close(self) -> None:
        return None

    async def write_verified(self, name: str, desired: FlagState, *, epoch: int | None = None) -> FlagState:
        """One attempt: write, then read back. Returns the observed state or raises FlagError.

        `epoch` is the writing engine's lease epoch, for a provider whose API can refuse a stale one."""
        await self.write_fenced(name, desired, epoch)
        observed = await self.read(name)
        if observed is None:
            raise FlagError(f"read-back: flag {name} does not exist after the write")
        if not observed.matches(desired):
            raise FlagError(f"read-back shows {observed.label()}, wanted {desired.label()}")
        return observed
