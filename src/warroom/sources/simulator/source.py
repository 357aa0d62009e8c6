"""The built-in simulator source: numbers from the in-process service model.

A query is answered through its model: a simulator metric or expression, given by the
pane's `simulate:` or inferred from its query and unit (see sim_queries), else a bare
metric name or the exporter's own PromQL.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from warroom.plan.faults import Fault, load_faults
from warroom.plan.simulate import Expression, modelled_exposure, parse_expression
from warroom.plan.sources import SimulatorSourceConfig
from warroom.sources.base import Reading, Source, SourceContext
from warroom.sources.simulator.model import MODEL, ServiceModel
from warroom.sources.simulator.queries import QueryModel, infer, suggestion

_EXPORTER_COHORT = re.compile(r"""cohort\s*=\s*["'](new|control)["']""")


class SimulatorSource(Source):
    kind = "simulator"
    Config = SimulatorSourceConfig

    def __init__(self, name: str, config: SimulatorSourceConfig, base_dir: Path, extra_faults: tuple[Fault, ...] = (),
                 models: dict[str, QueryModel] | None = None):
        super().__init__(name, config)
        faults = tuple(config.faults)
        if config.faults_file:
            path = Path(config.faults_file)
            faults += load_faults(path if path.is_absolute() else base_dir / path)
        self.model = ServiceModel(seed=config.seed, noise=config.noise, faults=faults + tuple(extra_faults))
        # query → (expression, cohort it is asked for; None: the whole service)
        self.models: dict[str, tuple[Expression, str | None]] = {
            query: (parse_expression(m.expression), m.cohort) for query, m in (models or {}).items()}

    def describe(self) -> str:
        return f"simulator (seed {self.config.seed}, {len(self.model.faults)} faults)"

    def query_model(self, query: str) -> tuple[Expression, str | None] | None:
        if query in self.models:
            return self.models[query]
        inferred = infer(query)
        # The exporter's own label says the cohort of a query no plan condition registered.
        cohort = _EXPORTER_COHORT.search(query)
        return (parse_expression(inferred), cohort.group(1) if cohort else None) if inferred else None

    def static_problem(self, query: str) -> str | None:
        if self.query_model(query) is None:
            return (
                f"the simulator cannot model this query; give its pane `simulate: {suggestion('ratio')}` "
                f"(or another expression of: {', '.join(MODEL)}), or use a metric name or the exporter PromQL "
                "(see `warroom simulate --queries`)"
            )
        return None

    def _exposure(self, ctx: SourceContext) -> float:
        flags = ctx.flags or {}
        if self.config.flag:
            if self.config.flag in flags:
                return modelled_exposure(flags[self.config.flag])
            return ctx.exposure.get(self.config.flag, 0.0)
        if flags:
            return max((modelled_exposure(state) for state in flags.values()), default=0.0)
        return max(ctx.exposure.values(), default=0.0)

    async def query(self, query: str, ctx: SourceContext, series_label: str | None = None) -> Reading:
        model = self.query_model(query)
        if model is None:
            # The query, not the source, is the problem: no source outage is journaled for it.
            return Reading.invalid(self.static_problem(query) or "unknown query")
        expression, cohort = model
        t = ctx.now - ctx.started_at
        phase_t = t if ctx.phase_started_at is None else ctx.phase_started_at - ctx.started_at
        self.model.observe_phase(ctx.phase, phase_t)
        exposure = self._exposure(ctx)
        if any(self.model.is_dark(t, exposure, metric) for metric in expression.metrics):
            return Reading.error("simulated outage: the metrics source is dark")
        service = self.model.service(t, exposure)
        if cohort is not None:
            share = service.new.share if cohort == "new" else service.control.share
            if share <= 0 and any(m not in ("request_rate", "session_rate", "ws_connections") for m in expression.metrics):
                # No user in this cohort: Prometheus has no series to divide, so neither does the model.
                return Reading.nodata(f"no traffic in the {cohort} cohort")
            value = expression.evaluate(lambda metric: service.cohort_value(metric, cohort))
        else:
            value = expression.evaluate(service.value)
        if math.isnan(value):
            return Reading.invalid(f"simulate: {expression.text} divides by zero here")
        return Reading.ok(value)
