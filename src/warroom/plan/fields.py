"""The plan's value types: durations, numbers, ids, secret references, headers, and the strict base model.

A value read from plan text is held to what a person means by it: a duration carries its
unit (`hold: 30` — thirty what?), a number is finite and of a size someone could mean.
Values built in code (a drill's fitted plan, a report's copy of the journal) keep plain
seconds: the text rules apply only when validating with `FROM_TEXT` in the context.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from warroom.core import secrets
from warroom.core.units import DURATION_HELP, parse_duration

# The validation context of values read from a YAML file (plans, fault schedules, scenarios).
FROM_TEXT: dict[str, bool] = {"from_text": True}

# Longer than any launch waits for: `for: 99999999999999999999h` is a typo, not a window.
MAX_DURATION = 366 * 86400.0
# Beyond this a threshold is a slip of the unit or the keyboard (floats stop counting exactly at 2^53).
MAX_NUMBER = 1e15


def from_text(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("from_text"))


def duration(value: Any, info: ValidationInfo) -> float:
    """Seconds from a duration as written (`30s`, `1h30m`); from plan text, never a bare number."""
    if from_text(info) and isinstance(value, (int, float)) and not isinstance(value, bool):
        # Bare numbers used to be seconds; a plan read as minutes would soak 60× too short.
        n = f"{value:g}" if math.isfinite(value) else "30"
        raise ValueError(f"a number alone is not a duration ({n} what?): write its unit, "
                         f"ms, s, m, h or d ({n}s, {n}m)")
    seconds = parse_duration(value)
    if seconds > MAX_DURATION:
        raise ValueError(f"longer than a year ({MAX_DURATION / 86400:g}d): no launch waits that long; {DURATION_HELP}")
    return seconds


def _positive(seconds: float) -> float:
    # A zero timeout fails every call, and polling every 0 s never lets a virtual-time run advance.
    if seconds <= 0:
        raise ValueError(f"expected {DURATION_HELP}, more than zero")
    return seconds


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    if abs(value) > MAX_NUMBER:
        raise ValueError(f"a number beyond ±{MAX_NUMBER:g} is no threshold anyone means: check its unit")
    return value


def _secret_ref(value: str) -> str:
    if not secrets.is_reference(value):
        raise ValueError(f"expected {secrets.REF_HELP}")
    return value


# Header names that carry a credential: their values must be references like any secret.
_CREDENTIAL_HEADER = re.compile(r"authorization|token|secret|passw|api[-_]?key|cookie", re.IGNORECASE)


def _headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if _CREDENTIAL_HEADER.search(name) and not secrets.is_reference(text):
            raise ValueError(f"header {name!r} carries a credential: its value must be {secrets.REF_HELP}")
    return value


Duration = Annotated[float, BeforeValidator(duration)]
PositiveDuration = Annotated[float, BeforeValidator(duration), AfterValidator(_positive)]
SecretRef = Annotated[str, AfterValidator(_secret_ref)]
Headers = Annotated[dict[str, str], AfterValidator(_headers)]
Number = Annotated[float, AfterValidator(_finite)]
PositiveNumber = Annotated[float, Field(gt=0), AfterValidator(_finite)]
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=100)]
Percent = Annotated[float, Field(ge=0, le=100)]

# The validators that mark a field as holding a secret (secret_refs.py finds them by type).
SECRET_VALIDATOR = _secret_ref
SECRET_HEADERS_VALIDATOR = _headers


class Strict(BaseModel):
    # defer_build: schemas are built on first validation, not at import (console start-up);
    # defaults are factories for the same reason (an instance would force a build).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class TLSOptions(Strict):
    ca_bundle: str | None = None
    # Explicit opt-in; the banner shows INSECURE while it is on.
    insecure_skip_verify: bool = False
