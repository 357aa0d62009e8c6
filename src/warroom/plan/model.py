"""The plan: one YAML file describing a rollout, validated into an immutable model.

Every validation problem names the file, line and field and says what is expected.
Unknown keys are errors, because a typo such as `above_` must never silently
disable a guardrail.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from warroom.core import secrets
from warroom.core.flagstate import FlagState
from warroom.core.units import DURATION_HELP, parse_duration
from warroom.plan.yamlfile import Loc, Located, PlanError, Problem, compose, dotted, read_text
from warroom.sources.simulator.model import MODEL
from warroom.sources.simulator.queries import parse_expression

# ---------------------------------------------------------------- scalars

def _secret_ref(value: str) -> str:
    if not secrets.is_reference(value):
        raise ValueError(f"expected {secrets.REF_HELP}")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


# Header names that carry a credential: their values must be references like any secret.
_CREDENTIAL_HEADER = re.compile(r"authorization|token|secret|passw|api[-_]?key|cookie", re.IGNORECASE)


def _headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if _CREDENTIAL_HEADER.search(name) and not secrets.is_reference(text):
            raise ValueError(f"header {name!r} carries a credential: its value must be {secrets.REF_HELP}")
    return value


def _positive(seconds: float) -> float:
    # A zero timeout fails every call, and polling every 0 s never lets a virtual-time run advance.
    if seconds <= 0:
        raise ValueError(f"expected {DURATION_HELP}, more than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]
SecretRef = Annotated[str, AfterValidator(_secret_ref)]
Headers = Annotated[dict[str, str], AfterValidator(_headers)]
Number = Annotated[float, AfterValidator(_finite)]
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=100)]
Percent = Annotated[float, Field(ge=0, le=100)]


class Strict(BaseModel):
    # defer_build: schemas are built on first validation, not at import (console start-up);
    # defaults are factories for the same reason (an instance would force a build).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


# ---------------------------------------------------------------- sources

class BasicAuth(Strict):
    username: str
    password: SecretRef


class SourceAuth(Strict):
    bearer: SecretRef | None = None
    basic: BasicAuth | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceAuth:
        if (self.bearer is None) == (self.basic is None):
            raise ValueError("give exactly one of bearer or basic")
        return self


class TLSOptions(Strict):
    ca_bundle: str | None = None
    # Explicit opt-in; the banner shows INSECURE while it is on.
    insecure_skip_verify: bool = False


def _database_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise ValueError(f"not a database URL ({exc})") from None
    if parts.password is not None:
        # Never echo the URL: it holds the secret.
        raise ValueError(f"the URL holds a password: leave it out and give state.password as {secrets.REF_HELP}")
    if not parts.hostname or not parts.path.strip("/"):
        raise ValueError("expected postgresql://USER@HOST:PORT/DATABASE")
    return url


DATABASE_URL = ("postgresql://", "postgres://")


class PostgresState(Strict):
    """`state:` on PostgreSQL: one store for engines and consoles on several hosts (store/postgres.py)."""

    url: Annotated[str, Field(pattern=r"^postgres(ql)?://\S+$"), AfterValidator(_database_url)]
    password: SecretRef | None = None  # None: libpq's own ways (~/.pgpass, PGPASSWORD, peer or certificate)
    tls: TLSOptions = Field(default_factory=TLSOptions)
    # The rows of this rollout in a database several rollouts share; default: rollout.name.
    rollout: Annotated[str, Field(min_length=1, max_length=120)] | None = None

    def keyed(self, rollout_name: str) -> PostgresState:
        return self if self.rollout else self.model_copy(update={"rollout": rollout_name})

    def __str__(self) -> str:
        return f"{self.url} (rollout {self.rollout})" if self.rollout else self.url


def _state(value: Any) -> Any:
    """`state: postgresql://…` is the short form of `state: {url: postgresql://…}`."""
    return {"url": value} if isinstance(value, str) and value.startswith(DATABASE_URL) else value


def _state_kind(value: Any) -> str:
    return "file" if isinstance(value, str) else "database"


# A path (SQLite) or PostgreSQL; told apart before validation, so a mistake is reported once, in its own terms.
StateConfig = Annotated[
    Annotated[PostgresState, Tag("database")] | Annotated[str, Tag("file")],
    Discriminator(_state_kind),
    BeforeValidator(_state),
]


class PrometheusSourceConfig(Strict):
    type: Literal["prometheus"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    auth: SourceAuth | None = None
    headers: Headers = {}
    timeout: PositiveDuration = 5.0
    tls: TLSOptions = Field(default_factory=TLSOptions)
    backfill: Duration = 300.0


def _sim_metric(metric: str) -> str:
    if metric not in MODEL:
        # A misspelt metric would be a fault that never happens: a drill that proves nothing.
        raise ValueError(f"unknown metric (the simulator has: {', '.join(MODEL)})")
    return metric


SimMetric = Annotated[str, AfterValidator(_sim_metric)]


def _simulate(text: str) -> str:
    return parse_expression(text).text


# A pane's model for drills: a simulator metric or arithmetic of them (`latency_p95 * 1000`).
SimulateExpression = Annotated[str, AfterValidator(_simulate)]


class Fault(Strict):
    """One injected fault in the simulator's service."""

    metric: SimMetric | None = None  # None only for `dark`
    # When: `at` seconds after the run starts, or `after` seconds into phase `phase`.
    at: Duration | None = None
    phase: Annotated[int, Field(ge=1)] | None = None
    after: Duration = 0.0
    duration: Duration | None = None  # None: lasts until the end
    mode: Literal["set", "add", "multiply", "ramp", "spike", "dark"] = "set"
    value: Number = 0.0
    # A fault in the new code is present only while some traffic is exposed to it,
    # so rolling back clears it; set false for an infrastructure fault (false alarms).
    while_exposed: bool = True

    @model_validator(mode="after")
    def _when(self) -> Fault:
        if self.at is None and self.phase is None:
            raise ValueError("give `at` (time since start) or `phase` (with optional `after`)")
        if self.mode != "dark" and not self.metric:
            raise ValueError("give the `metric` this fault changes")
        return self


class SimulatorSourceConfig(Strict):
    type: Literal["simulator"]
    seed: int = 7
    flag: str | None = None  # the flag whose exposure drives the model; default: the most exposed
    faults: list[Fault] = []
    faults_file: str | None = None
    noise: Annotated[float, Field(ge=0, le=1)] = 0.05


SourceConfig = Annotated[
    PrometheusSourceConfig | SimulatorSourceConfig, Field(discriminator="type")
]


# ---------------------------------------------------------------- panes, guardrails, gates

Unit = Literal["ratio", "percent", "seconds", "ms", "count", "bytes"]


class Pane(Strict):
    id: Ident
    title: str
    query: str
    source: str | None = None
    unit: Unit = "count"
    warn: Number | None = None
    breach: Number | None = None
    # Which side of the thresholds is bad; inferred from warn/breach when both are given.
    bad: Literal["above", "below"] | None = None
    series_label: str | None = None
    # What the pane models in a drill (the simulator answers it); default: inferred from query and unit.
    simulate: SimulateExpression | None = None

    @property
    def bad_side(self) -> str:
        if self.bad:
            return self.bad
        if self.warn is not None and self.breach is not None and self.breach < self.warn:
            return "below"
        return "above"


# ---------------------------------------------------------------- cohorts

COHORT = "{cohort}"
Cohort = Literal["new", "control"]


def _probability(value: Any) -> Any:
    # A false-alarm rate as the plan writes it: 1% or 0.01.
    if isinstance(value, str) and (match := _PERCENT.fullmatch(value)):
        return float(match.group(1)) / 100
    return value


Probability = Annotated[float, BeforeValidator(_probability), Field(gt=0, lt=1)]


class CohortLabels(Strict):
    """What `{cohort}` becomes in each cohort's query (the label values of your metrics)."""

    new: str = "new"
    control: str = "control"


class CohortPair(Strict):
    new: str
    control: str


class CohortQueries(Strict):
    """A query asked once per cohort: one text with `{cohort}` in it, or one query for each."""

    query: str | None = None
    new: str | None = None
    control: str | None = None
    cohorts: CohortLabels = Field(default_factory=CohortLabels)
    source: str | None = None

    @model_validator(mode="after")
    def _sides(self) -> CohortQueries:
        if self.query is not None:
            if self.new is not None or self.control is not None:
                raise ValueError("give `query` (with {cohort} in it) or both `new` and `control`, not both")
            if COHORT not in self.query:
                raise ValueError("the query must contain {cohort}, which becomes each cohort's label (or give `new` and `control`)")
        elif self.new is None or self.control is None:
            raise ValueError("give `query` with {cohort} in it, or both `new` and `control` queries")
        return self

    def side(self, cohort: Cohort) -> str:
        if self.query is not None:
            return self.query.replace(COHORT, getattr(self.cohorts, cohort))
        return (self.new if cohort == "new" else self.control) or ""

    def fill(self, text: str | CohortPair, cohort: Cohort) -> str:
        """Another query of these cohorts (a count, say): `{cohort}` replaced, or its side of a pair."""
        if isinstance(text, CohortPair):
            return getattr(text, cohort)
        return text.replace(COHORT, getattr(self.cohorts, cohort))


class Comparison(CohortQueries):
    """The new cohort's value against the control's, bad beyond a difference, a ratio, or both."""

    unit: Unit | None = None  # default: the pane's
    # new − control beyond which the new code is worse; its sign says which way is worse.
    difference: Number | None = None
    # new / control beyond which it is worse: 2 (×2) when higher is worse, 0.5 when lower is.
    ratio: Annotated[float, Field(gt=0), AfterValidator(_finite)] | None = None

    @model_validator(mode="after")
    def _limits(self) -> Comparison:
        if self.difference is None and self.ratio is None:
            raise ValueError("give `difference` (e.g. +0.5pp), `ratio` (e.g. ×2), or both: what counts as worse than the control")
        if self.difference == 0:
            raise ValueError("a difference of 0 trips on any gap at all; give its size, +0.5pp say")
        if self.ratio == 1:
            raise ValueError("a ratio of 1 trips on any gap at all; ×2 when higher is worse, ×0.5 when lower is")
        if self.difference is not None and self.ratio is not None and (self.difference > 0) != (self.ratio > 1):
            raise ValueError("`difference` and `ratio` disagree on which way is worse (a + difference goes with a ratio above 1)")
        return self

    @property
    def worse(self) -> str:
        """Which side of the control is worse: above (higher is worse) or below."""
        if self.difference is not None:
            return "above" if self.difference > 0 else "below"
        return "above" if (self.ratio or 2) > 1 else "below"


class Evidence(Strict):
    """Judge only on enough traffic in the window, and (comparisons) only on a difference that is real."""

    count: str | CohortPair  # requests (or samples) in the window; `{cohort}` in it for a comparison
    min: Annotated[float, Field(gt=0)]
    source: str | None = None
    # A one-sided two-proportion z-test on the window's counts (ratio comparisons only).
    test: Literal["two-proportion"] | None = None
    # With `test`: the chance that a healthy phase trips on noise during its soak.
    false_alarm: Probability = 0.01


class ExposureCheck(CohortQueries):
    """Units (users, sessions) assigned to each cohort in a window: does the new share match the flag?"""

    flag: str | None = None  # whose percentage; default: the simulator's flag, else the plan's first
    min: Annotated[float, Field(gt=0)] = 100
    false_alarm: Probability = 0.001  # sample-ratio mismatch when the chi-square p-value is below it
    settle: Duration = 60.0  # after a step, the window's lag before the new split shows


class Condition(Strict):
    """A value compared with a threshold: `pane` or `query`, and `above` or `below`; or a cohort comparison."""

    # What the threshold means, for the error message: a bad side (guardrail) or a good one (gate).
    _threshold_means: ClassVar[str] = "the threshold that is bad"
    _threshold_is_bad: ClassVar[bool] = True

    pane: str | None = None
    query: str | None = None
    source: str | None = None
    above: Number | None = None
    below: Number | None = None
    compare: Comparison | None = None
    evidence: Evidence | None = None

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        if self.compare is not None:
            self._comparison_shape(self.compare)
        else:
            if (self.pane is None) == (self.query is None):
                raise ValueError("give exactly one of `pane` (a pane id) or `query`")
            if (self.above is None) == (self.below is None):
                raise ValueError(f"give exactly one of `above` or `below` ({self._threshold_means})")
        evidence = self.evidence
        if evidence is not None:
            paired = isinstance(evidence.count, CohortPair) or COHORT in evidence.count
            if self.compare is None and paired:
                raise ValueError("evidence.count names cohorts, but this compares no cohorts: give one query counting the window's requests")
            if self.compare is not None and not paired:
                raise ValueError("evidence.count must count each cohort: put {cohort} in it, or give {new: …, control: …}")
            if evidence.test and self.compare is None:
                raise ValueError("evidence.test compares the new cohort with the control: it needs `compare`")
        return self

    def _comparison_shape(self, compare: Comparison) -> None:
        if self.query is not None:
            raise ValueError("a comparison asks its own queries (compare.query, or compare.new and compare.control); "
                             "drop `query` (`pane` may say where it is shown)")
        if self.above is not None and self.below is not None:
            raise ValueError("give at most one of `above` or `below`: the new cohort's absolute limit")
        if self.above is not None or self.below is not None:
            bad_side = self.op if self._threshold_is_bad else ("below" if self.op == "above" else "above")
            if bad_side != compare.worse:
                raise ValueError(f"the absolute limit and the comparison disagree on which way is worse "
                                 f"(the comparison says {'higher' if compare.worse == 'above' else 'lower'} is worse)")

    @property
    def op(self) -> str:
        if self.above is None and self.below is None and self.compare is not None:
            return self.compare.worse if self._threshold_is_bad else ("below" if self.compare.worse == "above" else "above")
        return "above" if self.above is not None else "below"

    @property
    def threshold(self) -> float | None:
        """The absolute limit; None for a comparison that has none (its limit moves with the control)."""
        return self.above if self.above is not None else self.below

    def is_above_or_below(self, value: float) -> bool:
        """True when the value is on the named side of the threshold (False without one)."""
        if self.threshold is None:
            return False
        return value > self.threshold if self.op == "above" else value < self.threshold


class Guardrail(Condition):
    id: Ident | None = None
    for_: Duration = Field(0.0, alias="for")
    action: Literal["rollback", "pause", "alert"] = "rollback"
    no_data: Literal["hold", "breach", "ignore"] = "hold"
    # shadow: judged and journaled ("would have rolled back"), never acting nor blocking a step.
    mode: Literal["act", "shadow"] = "act"
    description: str = ""


class Gate(Condition):
    """Must be green to step up. `above`/`below` here state what is good."""

    _threshold_means: ClassVar[str] = "what the value must be to pass"
    _threshold_is_bad: ClassVar[bool] = False

    name: str | None = None

    def passes(self, value: float) -> bool:
        return self.is_above_or_below(value) if self.threshold is not None else True

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.compare is not None:
            return f"{self.pane or 'new cohort'} vs control"
        op = ">" if self.above is not None else "<"
        return f"{self.pane or self.query} {op} {self.threshold:g}"


# ---------------------------------------------------------------- flags and phases

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


class ChecklistItem(Strict):
    text: str
    required: bool = False
    id: Ident | None = None


def _item_shorthand(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


Item = Annotated[ChecklistItem, BeforeValidator(_item_shorthand)]


class Phase(Strict):
    name: str
    flags: dict[str, FlagValue]
    hold: Duration = 0.0
    gates: list[Gate] = []
    checklist: list[Item] = []

    def item_ids(self) -> list[str]:
        return [item.id or f"{i + 1}" for i, item in enumerate(self.checklist)]

    def find_item(self, ref: str) -> str:
        """The id of the item `ref` names: a number is always a position (1 = first item, whatever
        ids the items have), else an id, else a unique part of an item's text. LookupError otherwise."""
        ids = self.item_ids()
        if ref.strip().isdigit() and 1 <= int(ref) <= len(ids):
            return ids[int(ref) - 1]
        if ref in ids:
            return ref
        matches = [iid for iid, item in zip(ids, self.checklist, strict=True) if ref.lower() in item.text.lower()]
        if len(matches) != 1:
            raise LookupError(f"no single checklist item {ref!r}; items: " + ", ".join(
                f"{i + 1}" + (f" ({iid})" if iid != f"{i + 1}" else "") for i, iid in enumerate(ids)))
        return matches[0]


# ---------------------------------------------------------------- rollback steps

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


class Automation(Strict):
    # auto: step up by itself as soon as soak, gates and required items allow.
    step_up: Literal["manual", "auto"] = "manual"


class RolloutInfo(Strict):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    environment: Literal["production", "staging", "drill"]
    description: str = ""


class FlagProviderConfig(BaseModel):
    """The provider's own keys are validated by the provider's model (see flags.registry)."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)
    provider: str


class Plan(Strict):
    rollout: RolloutInfo
    sources: Annotated[dict[str, SourceConfig], Field(min_length=1)]
    flag_provider: FlagProviderConfig
    poll_interval: PositiveDuration = 5.0
    panes: list[Pane] = []
    guardrails: list[Guardrail] = []
    phases: Annotated[list[Phase], Field(min_length=1)]
    rollback: RollbackSpec = Field(default_factory=RollbackSpec)
    notify: list[NotifyTarget] = []
    automation: Automation = Field(default_factory=Automation)
    state: StateConfig | None = None  # a path (SQLite) or PostgreSQL
    keys: dict[str, str] = {}
    theme: str | None = None
    exposure: ExposureCheck | None = None  # the exposure check, a gate every phase has

    # Set by load_plan; not part of the YAML.
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: Path | None = Field(default=None, exclude=True)

    def pane(self, pane_id: str) -> Pane:
        return next(p for p in self.panes if p.id == pane_id)

    def flag_names(self) -> list[str]:
        names: list[str] = []
        for phase in self.phases:
            names.extend(n for n in phase.flags if n not in names)
        for name in (self.rollback.flags or {}):
            if name not in names:
                names.append(name)
        return names

    def rollback_flags(self) -> dict[str, FlagSetting]:
        if self.rollback.flags is not None:
            return dict(self.rollback.flags)
        return {name: FlagSetting(enabled=False, rollout=0.0) for name in self.flag_names()}

    def resolve_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def default_source(self) -> str:
        return next(iter(self.sources))

    def guardrail_id(self, index: int) -> str:
        g = self.guardrails[index]
        if g.id:
            return g.id
        if g.compare is not None:
            return f"{g.pane or 'cohort'}-vs-control"
        return f"{g.pane or 'query'}-{g.op}-{g.threshold:g}"

    def condition_unit(self, cond: Condition) -> str:
        """The unit a guardrail's or gate's numbers are in: its comparison's, else its pane's."""
        if cond.compare is not None and cond.compare.unit:
            return cond.compare.unit
        return self.pane(cond.pane).unit if cond.pane else "count"

    # What the journal keeps of the plan for reports: never sources, flag provider, runbook
    # or notify targets, whose headers and URLs may carry credentials.
    REPORTED: ClassVar[frozenset[str]] = frozenset({"rollout", "poll_interval", "panes", "guardrails", "phases", "automation", "exposure"})

    def journal_copy(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, include=set(self.REPORTED))

    @classmethod
    def from_journal_copy(cls, body: dict[str, Any]) -> Plan:
        """The plan as it ran, for a report: it reads no source and no flag, so those are stand-ins."""
        return cls.model_validate({**body, "sources": {"journal": {"type": "simulator"}}, "flag_provider": {"provider": "local"}})

    def secret_references(self) -> list[tuple[str, str]]:
        """(where, reference) for every secret the plan uses: source credentials and credential headers,
        the flag provider's token, runbook webhooks and headers, notify URLs. Found by type, so a new
        provider's or step's secret field is included without a list to keep up to date."""
        from warroom.flags import registry

        return [*_secret_refs(self, ""), *_secret_refs(registry.validate_config(self.flag_provider), "flag_provider")]


def _after_validators(info: Any) -> set[Any]:
    """The AfterValidator functions on a model field, also those inside Optional[Annotated[…]]."""
    found = {m.func for m in info.metadata if isinstance(m, AfterValidator)}
    stack = [info.annotation]
    while stack:
        t = stack.pop()
        found |= {m.func for m in getattr(t, "__metadata__", ()) if isinstance(m, AfterValidator)}
        stack.extend(a for a in get_args(t) if not isinstance(a, AfterValidator))
    return found


def _secret_refs(value: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [ref for k, v in value.items() for ref in _secret_refs(v, f"{where}.{k}")]
    if isinstance(value, (list, tuple)):
        return [ref for i, v in enumerate(value) for ref in _secret_refs(v, f"{where}[{i}]")]
    if not isinstance(value, BaseModel):
        return []
    out: list[tuple[str, str]] = []
    for name, info in type(value).model_fields.items():
        field, path = getattr(value, name), f"{where}.{info.alias or name}".lstrip(".")
        validators = _after_validators(info)
        if _secret_ref in validators and isinstance(field, str):
            out.append((path, field))
        elif _headers in validators and isinstance(field, dict):  # a header value is a secret when it is a reference
            out += [(f"{path}.{k}", v) for k, v in field.items() if secrets.is_reference(v)]
        else:
            out += _secret_refs(field, path)
    return out


# ---------------------------------------------------------------- loading with locations

def _clean_loc(loc: Loc) -> Loc:
    # pydantic adds union/validator tags (e.g. 'simulator', 'function-after[...]') into locations.
    # A union tag comes right after a source's name or a step's index, once: the `http` of
    # ('steps', 2, 'http', 'http', 'headers') is first the tag, then the step's real key.
    out: list[Any] = []
    tagged_at = -1
    for part in loc:
        if isinstance(part, str) and "[" in part:
            continue
        if part in _UNION_TAGS and len(out) >= 2 and out[-2] in ("sources", "steps") and tagged_at != len(out) or (
                out == ["state"] and part in ("database", "file")):
            tagged_at = len(out)
            continue
        out.append(part)
    return tuple(out)


_UNION_TAGS = {"run", "webhook", "http", "prometheus", "simulator"}


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling: an unknown key is an error so a typo cannot silently disable anything)"
    if kind == "missing":
        return "this key is required"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    got = err.get("input")
    if kind == "float_parsing" and err["loc"] and err["loc"][-1] in _THRESHOLDS:
        msg = f"expected {THRESHOLD_HELP}"
    if kind == "float_parsing" and err["loc"] and err["loc"][-1] in _COMPARE_HELP:
        msg = f"expected {_COMPARE_HELP[err['loc'][-1]]}"
    if secrets.REF_HELP in msg:
        return msg  # the rejected value may be the secret itself: never echo it
    if kind not in ("model_type", "dict_type") and isinstance(got, (str, int, float, bool)) and "got" not in msg:
        msg += f" (got {got!r})"
    return msg


_THRESHOLDS = ("above", "below", "warn", "breach")
THRESHOLD_HELP = "a number in the pane's unit, or with a unit: 1% (ratio or percent pane), 500ms (seconds or ms pane)"
_PERCENT = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*%\s*")
_POINTS = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*pp\s*")
_TIMES = re.compile(r"\s*[×x*]?\s*(\d+(?:\.\d+)?)\s*[×x]?\s*")
_COMPARE_HELP = {
    "difference": "a signed difference in the pane's unit, or with a unit: +0.5pp (percentage points, ratio or percent), "
                  "+50ms (seconds or ms); + when higher is worse, - when lower is",
    "ratio": "a ratio of the new cohort to the control: ×2 (or 2) when higher is worse, ×0.5 when lower is",
}


def _in_unit(value: Any, unit: str) -> Any:
    """A threshold written with its unit (`1%`, `500ms`), in the pane's unit; anything else as it was."""
    if not isinstance(value, str):
        return value
    percent = _PERCENT.fullmatch(value)
    if percent and unit in ("ratio", "percent"):
        return float(percent.group(1)) / (100 if unit == "ratio" else 1)
    if unit in ("seconds", "ms"):
        try:
            seconds = parse_duration(value)
        except ValueError:
            return value
        return seconds * (1000 if unit == "ms" else 1)
    return value


def _difference_in_unit(value: Any, unit: str) -> Any:
    """`+0.5pp` (percentage points) or `+50ms` in the unit, sign kept; anything else as it was."""
    if not isinstance(value, str):
        return value
    points = _POINTS.fullmatch(value)
    if points and unit in ("ratio", "percent"):
        return float(points.group(1)) / (100 if unit == "ratio" else 1)
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    converted = _in_unit(text.lstrip("+-"), unit) if unit in ("seconds", "ms") else text
    return sign * converted if isinstance(converted, float) else value


def _ratio(value: Any) -> Any:
    """`×2`, `x2`, `2x` → 2.0; anything else as it was."""
    times = _TIMES.fullmatch(value) if isinstance(value, str) else None
    return float(times.group(1)) if times else value


def _comparison_in_units(cond: dict[str, Any], units: dict[Any, str]) -> None:
    """A comparison's limits written with units, in the unit of its numbers (its own, else its pane's)."""
    compare = cond["compare"]
    unit = compare.get("unit") if isinstance(compare.get("unit"), str) else units.get(cond.get("pane"), "count")
    for key in ("above", "below"):
        if key in cond:
            cond[key] = _in_unit(cond[key], unit)
    if "difference" in compare:
        compare["difference"] = _difference_in_unit(compare["difference"], unit)
    if "ratio" in compare:
        compare["ratio"] = _ratio(compare["ratio"])


def _thresholds_in_pane_units(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Convert thresholds written with a unit, so `above: 500ms` means what it says on a seconds pane.

    Returns (location, pane) of each guardrail or gate naming a pane the plan does not have: its
    threshold's unit is unknown, so the missing pane is the problem to report, not the threshold.
    """
    panes = data.get("panes")
    units: dict[Any, str] = {}
    for pane in panes if isinstance(panes, list) else []:
        if isinstance(pane, dict) and isinstance(pane.get("id"), str):
            unit = units[pane["id"]] = pane.get("unit", "count") if isinstance(pane.get("unit"), str) else ""
            for key in ("warn", "breach"):
                if key in pane:
                    pane[key] = _in_unit(pane[key], unit)
    guardrails = data.get("guardrails")
    conditions: list[tuple[Loc, Any]] = [(("guardrails", i), g) for i, g in enumerate(guardrails if isinstance(guardrails, list) else [])]
    phases = data.get("phases")
    for pi, phase in enumerate(phases if isinstance(phases, list) else []):
        if isinstance(phase, dict) and isinstance(phase.get("gates"), list):
            conditions += [(("phases", pi, "gates", gi), gate) for gi, gate in enumerate(phase["gates"])]
    unknown: list[tuple[Loc, str]] = []
    for loc, cond in conditions:
        if isinstance(cond, dict) and isinstance(cond.get("pane"), str) and cond["pane"] not in units:
            unknown.append((loc, cond["pane"]))
        if isinstance(cond, dict) and isinstance(cond.get("compare"), dict):
            _comparison_in_units(cond, units)
        elif isinstance(cond, dict) and isinstance(cond.get("pane"), str):
            for key in ("above", "below"):
                if key in cond:
                    cond[key] = _in_unit(cond[key], units.get(cond["pane"], ""))
    return unknown


def _validation_problems(exc: ValidationError, located: Located, prefix: Loc = ()) -> list[Problem]:
    problems = []
    for err in exc.errors():
        raw_loc = prefix + tuple(err["loc"])
        loc = _clean_loc(raw_loc)
        # For a missing key, point at its parent mapping (where it should be added).
        line, col = located.where(loc[:-1] if err["type"] == "missing" else loc)
        problems.append(Problem(located.file, line, col, dotted(loc), _message(err)))
    return problems


def _provider_problems(raw: Any, located: Located) -> list[Problem]:
    """The provider's own keys are checked by its model, so a new provider is one module."""
    if not isinstance(raw, dict) or not isinstance(raw.get("provider"), str):
        return []  # the Plan model reports the missing or malformed mapping
    from warroom.flags import registry

    try:
        registry.validate_config(FlagProviderConfig.model_validate(raw))
    except ValidationError as exc:
        return _validation_problems(exc, located, ("flag_provider",))
    except registry.UnknownProvider as exc:
        line, col = located.where(("flag_provider", "provider"))
        return [Problem(located.file, line, col, "flag_provider.provider", str(exc))]
    return []


def load_faults(path: Path) -> tuple[Fault, ...]:
    """A fault schedule file: a list of faults, or {faults: [...]}; problems located like a plan's."""
    data, located = compose(read_text(path, "fault schedule"), str(path))
    if data is None:
        return ()
    prefix: Loc = ()
    if isinstance(data, dict) and "faults" in data:
        data, prefix = data["faults"], ("faults",)
    if not isinstance(data, list):
        # Whatever else the file holds is not quoted: it may be any file on the machine.
        raise PlanError([Problem(str(path), 1, 1, "", "not a fault schedule: expected a list of faults, or a mapping with `faults:`")])
    try:
        return tuple(TypeAdapter(list[Fault]).validate_python(data))
    except ValidationError as exc:
        raise PlanError(_validation_problems(exc, located, prefix)) from None


def _faults_file_problems(plan: Plan, located: Located, base_dir: Path) -> list[Problem]:
    """A simulator's faults_file is part of the plan: a typo in it must not wait for the run."""
    out: list[Problem] = []
    for name, src in plan.sources.items():
        if isinstance(src, SimulatorSourceConfig) and src.faults_file:
            path = Path(src.faults_file).expanduser()
            try:
                load_faults(path if path.is_absolute() else base_dir / path)
            except PlanError as exc:
                if exc.problems[0].message == "no such file":
                    line, col = located.where(("sources", name, "faults_file"))
                    out.append(Problem(located.file, line, col, f"sources.{name}.faults_file", f"no such file: {path}"))
                else:
                    out += exc.problems
    return out


def parse_plan(text: str, file: str = "<plan>", base_dir: Path | None = None) -> Plan:
    """Validate plan text. Raises PlanError with located problems, never anything else."""
    data, located = compose(text, file)
    if data is None:
        raise PlanError([Problem(file, 1, 1, "", "the plan is empty; start from sample-config.yaml")])
    if not isinstance(data, dict):
        raise PlanError([Problem(file, 1, 1, "", "the plan must be a mapping with rollout, sources, phases, …")])
    from warroom.plan.checks import capability_problems, meaning_problems, unknown_pane_problems

    unknown_panes = _thresholds_in_pane_units(data)
    problems = unknown_pane_problems(unknown_panes, data, located)
    provider = _provider_problems(data.get("flag_provider"), located)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        # A threshold's unit comes from its pane: with the pane unknown, the pane is the problem.
        masked = {dotted(loc + (key,)) for loc, _ in unknown_panes for key in ("above", "below")}
        found = [p for p in _validation_problems(exc, located) if p.field not in masked]
        raise PlanError(found + problems + provider) from None
    problems += provider + meaning_problems(plan, located) + _faults_file_problems(plan, located, base_dir or Path("."))
    if not provider:
        problems += capability_problems(plan, located)
    if problems:
        raise PlanError(problems)
    extras: dict[str, Any] = {"base_dir": base_dir or Path(".")}
    if file != "<plan>":
        extras["path"] = Path(file)
    return plan.model_copy(update=extras)


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    return parse_plan(read_text(path, "plan"), str(path), path.resolve().parent)
