"""The built-in simulator source: numbers from the in-process service model.

A query is answered through its model: a simulator metric or expression, given by the
pane's `simulate:` or inferred from its query and unit (see sim_queries), else a bare
metric name or the exporter's own PromQL.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..plan import Fault, SimulatorSourceConfig, load_faults
from ..sim_queries import Expression, infer, parse_expression, suggestion
from ..simulator import MODEL, PROMQL, ServiceModel, modelled_exposure
from .base import Reading, Source, SourceContext


class SimulatorSource(Source):
    kind = "simulator"

    def __init__(self, name: str, config: SimulatorSourceConfig, base_dir: Path, extra_faults: tuple[Fault, ...] = (),
                 models: dict[str, str] | None = None):
        super().__init__(name, config)
        faults = tuple(config.faults)
        if config.faults_file:
            path = Path(config.faults_file)
            faults += load_faults(path if path.is_absolute() else base_dir / path)
        self.model = ServiceModel(seed=config.seed, noise=config.noise, faults=faults + tuple(extra_faults))
        self.models: dict[str, Expression] = {query: parse_expression(text) for query, text in (models or {}).items()}

    def describe(self) -> str:
        return f"simulator (seed {self.config.seed}, {len(self.model.faults)} faults)"

    def expression(self, query: str) -> Expression | None:
        if query in self.models:
            return self.models[query]
        inferred = infer(query)
        return parse_expression(inferred) if inferred else None

    def static_problem(self, query: str) -> str | None:
        if self.expression(query) is None:
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
        expression = self.expression(query)
        if expression is None:
            # The query, not the source, is the problem: no source outage is journaled for it.
            return Reading.invalid(self.static_problem(query) or "unknown query")
        t = ctx.now - ctx.started_at
        phase_t = t if ctx.phase_started_at is None else ctx.phase_started_at - ctx.started_at
        self.model.observe_phase(ctx.phase, phase_t)
        exposure = self._exposure(ctx)
        if any(self.model.is_dark(t, exposure, metric) for metric in expression.metrics):
            return Reading.error("simulated outage: the metrics source is dark")
        service = self.model.service(t, exposure)
        value = expression.evaluate(service.value)
        if math.isnan(value):
            return Reading.invalid(f"simulate: {expression.text} divides by zero here")
        return Reading.ok(value)


__all__ = ["SimulatorSource", "load_faults", "PROMQL"]
