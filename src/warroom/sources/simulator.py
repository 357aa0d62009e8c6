"""The built-in simulator source: numbers from the in-process service model."""

from __future__ import annotations

from pathlib import Path

from ..plan import Fault, SimulatorSourceConfig, load_faults
from ..simulator import MODEL, PROMQL, ServiceModel, metric_for_query
from .base import Reading, Source, SourceContext


class SimulatorSource(Source):
    kind = "simulator"

    def __init__(self, name: str, config: SimulatorSourceConfig, base_dir: Path, extra_faults: tuple[Fault, ...] = ()):
        super().__init__(name, config)
        faults = tuple(config.faults)
        if config.faults_file:
            path = Path(config.faults_file)
            faults += load_faults(path if path.is_absolute() else base_dir / path)
        self.model = ServiceModel(seed=config.seed, noise=config.noise, faults=faults + tuple(extra_faults))

    def describe(self) -> str:
        return f"simulator (seed {self.config.seed}, {len(self.model.faults)} faults)"

    def static_problem(self, query: str) -> str | None:
        if metric_for_query(query) is None:
            return (
                f"the simulator does not know this query; use a metric name ({', '.join(MODEL)}) "
                "or the matching exporter PromQL (see `warroom simulate --queries`)"
            )
        return None

    def _exposure(self, ctx: SourceContext) -> float:
        if self.config.flag:
            return ctx.exposure.get(self.config.flag, 0.0)
        return max(ctx.exposure.values(), default=0.0)

    async def query(self, query: str, ctx: SourceContext, series_label: str | None = None) -> Reading:
        metric = metric_for_query(query)
        if metric is None:
            return Reading.error(self.static_problem(query) or "unknown query")
        t = ctx.now - ctx.started_at
        phase_t = t if ctx.phase_started_at is None else ctx.phase_started_at - ctx.started_at
        self.model.observe_phase(ctx.phase, phase_t)
        exposure = self._exposure(ctx)
        if self.model.is_dark(t, exposure, metric):
            return Reading.error("simulated outage: the metrics source is dark")
        return Reading.ok(self.model.value(metric, t, exposure))


__all__ = ["SimulatorSource", "load_faults", "PROMQL"]
