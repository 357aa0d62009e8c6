"""What a rollback does after the flags read back off: runbook steps; and who is told (notify)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag

from warroom.plan.fields import Headers, PositiveDuration, SecretRef, Strict
from warroom.plan.flagsetting import FlagValue


class RunStep(Strict):
    name: str | None = None
    run: Annotated[list[str], Field(min_length=1)]
    timeout: PositiveDuration = 60.0


class WebhookStep(Strict):
    name: str | None = None
    webhook: SecretRef
    message: str = "{rollout}: rolled back in {environment} at phase {phase}: {reason}"


class HttpRequest(Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    headers: Headers = {}
    body: Any = None
    expect_status: list[int] = []
    timeout: PositiveDuration = 10.0


class HttpStep(Strict):
    name: str | None = None
    http: HttpRequest


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("run", "webhook", "http"):
            if key in value:
                return key
    if isinstance(value, BaseModel):
        return next((k for k in ("run", "webhook", "http") if hasattr(value, k)), None)
    return None


Step = Annotated[
    Annotated[RunStep, Tag("run")] | Annotated[WebhookStep, Tag("webhook")] | Annotated[HttpStep, Tag("http")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step is one of {run: [argv…]}, {webhook: env:NAME}, {http: {url: …}}",
    ),
]


class RollbackSpec(Strict):
    # None: every flag the phases mention is switched off.
    flags: dict[str, FlagValue] | None = None
    steps: list[Step] = []
    # None: dry-run (journaled, not executed) in a drill or when every number comes from the
    # simulator: simulated numbers must never scale a real deployment.
    dry_run: bool | None = None


class NotifyTarget(Strict):
    type: Literal["slack", "webhook"]
    url: SecretRef
    events: list[str] | None = None
