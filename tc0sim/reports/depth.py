"""``tc0sim depth``: the Pareto-maximal critical depth of a model (VAR Lemma 5.2's accounting), its
witness paths by operator, the depth at given symbol values, the file's claim with a verdict, the
threshold-circuit depth, the size, and the time and memory the analysis took."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tc0sim.errors import ConfigError
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.audit.verdict import claim_verdict
from tc0sim.ir.vectors import dot
from tc0sim.reports.base import (
    PATH_HEADERS, Report, Section, as_spec, exact_text, group_dicts, group_rows, jsonable, no_status, vec_dict, vec_text,
)
from tc0sim.reports.size import size_sections

if TYPE_CHECKING:
    from tc0sim.interp.depth import DepthResult
    from tc0sim.ir.graph import Graph
    from tc0sim.modelfile import ModelSpec

Vec = tuple[int, ...]


def claim_words(verdict: str, detail: Vec | None, claim: Vec) -> str:
    """A claim verdict (``claim_verdict``) in words."""
    if verdict == "tight":
        return "tight: a critical vector equals the claim"
    if verdict == "slack":
        return f"slack: every critical vector is below the claim, the closest by {vec_text(detail)}"
    excess = tuple(max(0, a - b) for a, b in zip(detail, claim))
    return f"violated: the critical vector {vec_text(detail)} exceeds the claim by {vec_text(excess)}"


def _resources(started: float, built: float, analysed: float, depth_cpu: float) -> dict[str, float]:
    """Wall times since the report started (perf_counter), the depth analysis's CPU time
    (process_time) and the process's peak RSS (getrusage, MB)."""
    import resource

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "wall_time_s": round(time.perf_counter() - started, 4),
        "build_time_s": round(built - started, 4),
        "depth_time_s": round(analysed - built, 4),
        "depth_cpu_s": round(depth_cpu, 4),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


@dataclass
class DepthReport(Report):
    """The depth analysis of one model at one n, with what the report shows of it."""

    spec: ModelSpec
    file: str
    n: int | None
    graph: Graph
    result: DepthResult
    size: dict[str, Any]
    witnesses: list[tuple[Vec, list[Any]]]
    values: dict[str, Fraction] | None = None
    full_path: bool = False
    threshold: Any = None
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def defaulted(self) -> list[str]:
        """The symbols not given a value (they count 1)."""
        return [s for s in SYMBOLS if s not in (self.values or {})]

    def _at(self) -> tuple[dict[str, Fraction], Vec, Fraction]:
        values = {s: Fraction((self.values or {}).get(s, 1)) for s in SYMBOLS}
        best = self.result.best(values)
        return values, best, Fraction(dot(best, values))

    def critical_path(self) -> tuple[Fraction, list[Any]]:
        """The depth at the given values (every symbol 1 by default) and its path by operator."""
        _, best, number = self._at()
        return number, self.result.witness_groups(best)

    def _claim(self) -> tuple[str, Vec | None]:
        return claim_verdict(self.result.critical, self.spec.claim)

    def as_dict(self) -> dict[str, Any]:
        spec, result, n = self.spec, self.result, self.n
        depth: dict[str, Any] = {
            **result.as_dict(),  # critical, linear, per_symbol, exact, inexact_reasons
            "all_ones": max((sum(v) for v in result.critical), default=0),
            "tensor_nodes": result.analysed_nodes,
            "witness": [self._witness_json(v, groups) for v, groups in self.witnesses],
            "at": None,
        }
        if spec.claim is not None:
            verdict, detail = self._claim()
            depth["claim"] = {
                "claimed": vec_text(spec.claim),
                "verdict": verdict,
                "slack" if verdict == "slack" else "exceeding": vec_dict(detail) if detail else None,
            }
        if self.values is not None:
            values, best, number = self._at()
            depth["at"] = {
                "values": {s: exact_text(values[s]) for s in SYMBOLS},
                "defaulted": self.defaulted,
                "depth": jsonable(number),
                "vector": vec_dict(best),
                "by_operator": group_dicts(result.witness_groups(best)),
            }
        info = {"file": self.file, "kind": spec.kind, "n": n if n is not None else spec.n,
                "dims": spec.dims_at(n), "params": spec.params_at(n)}
        data: dict[str, Any] = {"model": info, "depth": depth, "size": self.size}
        if self.threshold is not None:
            data["threshold"] = self.threshold.as_dict()
        data.update(self.resources)
        return data

    def _witness_json(self, v: Vec, groups: list[Any]) -> dict[str, Any]:
        """The witness path of ``v`` by operator and (with ``full_path``) node by node."""
        return {
            "vector": vec_dict(v),
            "linear": vec_text(v),
            "by_operator": group_dicts(groups),
            "path": [
                {"id": node.id, "prim": node.prim.name, "name": node.name, "operator": node.scope_path or "(top)"}
                for node in self.result.witness(v)
            ]
            if self.full_path
            else None,
        }

    def sections(self) -> list[Section]:
        spec, result = self.spec, self.result
        header = Section(f"{spec.label(self.n)} — {self.file}")
        if spec.description:
            header.lines.append(spec.description)
        maxima = result.per_symbol
        ones = max((sum(v) for v in result.critical), default=0)
        summary = Section("depth summary", ("", *SYMBOLS), [["most on one path", *(str(maxima[s]) for s in SYMBOLS)]])
        summary.lines.append(f"depth with every symbol = 1: {ones}; {len(result.critical)} Pareto-maximal vector(s) below")
        critical = Section("critical depth", ("#", "depth (linear form)", *SYMBOLS))
        for i, v in enumerate(result.critical, 1):
            critical.rows.append([str(i), vec_text(v), *(str(c) for c in v)])
        if len(result.critical) > 1:
            critical.lines.append(
                f"no single path dominates: {len(result.critical)} Pareto-maximal vectors "
                "(the depth is their maximum for given symbol values)"
            )
        if not result.exact:
            critical.lines.append("upper bound, not exact: " + "; ".join(result.inexact_reasons))
        if spec.claim is not None:
            verdict, detail = self._claim()
            critical.lines.append(f"claimed (key 'claim'): {vec_text(spec.claim)} — {claim_words(verdict, detail, spec.claim)}")
        sections = [header, summary, critical]
        if self.values is not None:
            values, best, number = self._at()
            given = ", ".join(f"{s}={exact_text(values[s])}" for s in SYMBOLS)
            note = f" (unspecified symbols = 1: {', '.join(self.defaulted)})" if self.defaulted else ""
            numeric = Section(f"depth at {given}: {exact_text(number)}{note}", PATH_HEADERS,
                              group_rows(result.witness_groups(best), self.full_path))
            numeric.lines.append(f"path vector: {vec_text(best)}")
            sections.append(numeric)
        if len(self.witnesses) < len(result.critical):
            critical.lines.append(
                f"witness paths below for the first {len(self.witnesses)} of {len(result.critical)} vectors (--witnesses N or all for more)"
            )
        for i, (v, groups) in enumerate(self.witnesses, 1):
            sections.append(Section(f"witness path {i} ({vec_text(v)}) by operator", PATH_HEADERS, group_rows(groups, self.full_path)))
        if self.threshold is not None:
            sections.append(self._threshold_section())
        sections.extend(size_sections(self.size, self.full_path))
        r = self.resources
        sections.append(
            Section(
                "resources",
                lines=[
                    f"wall time {r['wall_time_s']:.3f} s (graph build {r['build_time_s']:.3f} s, "
                    f"depth {r['depth_time_s']:.3f} s, {r['depth_cpu_s']:.3f} s CPU), "
                    f"peak RSS {r['peak_rss_mb']:.1f} MB"
                ],
            )
        )
        return sections

    def _threshold_section(self) -> Section:
        acc = self.threshold
        rows = [[s, str(acc.values[s]), acc.sources[s]] for s in SYMBOLS if s in acc.values]
        rows += [[s, "symbolic", why] for s, why in acc.unresolved.items()]
        section = Section(f"threshold circuits at p = {acc.precision}", ("symbol", "gate depth", "from"), rows)
        section.lines.append(f"depth = {acc.depth_text()} threshold gates" + ("" if acc.depth is not None else " (symbols left have no circuit)"))
        section.lines.append(f"size = {acc.gates} gates, {acc.wires} wires (elements × circuit size, over the primitives with circuits)")
        return section


def depth_report(
    model: str | Path | ModelSpec,
    n: int | None = None,
    values: Mapping[str, Fraction] | None = None,
    witnesses: int | None = 1,
    full_path: bool = False,
    memory_budget: int | None = None,
    allow_upper_bound: bool = False,
    threshold: bool = False,
    status: Callable[[str], AbstractContextManager[Any]] = no_status,
    started: float | None = None,
) -> DepthReport:
    """The exact critical depth of ``model`` at ``n`` (refused above ``memory_budget`` bytes unless
    ``allow_upper_bound``), witness paths for the first ``witnesses`` critical vectors (None: all),
    the depth at ``values`` (unspecified symbols 1), with ``threshold`` the threshold-circuit depth
    at the file's precision (docs/threshold.md). ``started`` (a ``time.perf_counter()``) is where
    the reported wall time begins (default: the call)."""
    from tc0sim.interp.depth import DEFAULT_MEMORY_BUDGET
    from tc0sim.interp.depth import depth as depth_of
    from tc0sim.interp.size import size as size_of

    started = time.perf_counter() if started is None else started
    spec, file = as_spec(model)
    unknown = sorted(set(values or {}) - set(SYMBOLS))
    if unknown:
        raise ConfigError(f"unknown depth symbol(s) {', '.join(unknown)}; expected one of {', '.join(SYMBOLS)}")
    graph = spec.build(n, share=True)
    built, cpu_before = time.perf_counter(), time.process_time()
    with status(f"computing the depth of {spec.label(n)}"):
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
        result = depth_of(graph, memory_budget=budget, allow_upper_bound=allow_upper_bound)
    analysed, depth_cpu = time.perf_counter(), time.process_time() - cpu_before
    size = size_of(graph).as_dict()
    shown = result.critical if witnesses is None else result.critical[:witnesses]
    report = DepthReport(spec, file, n, graph, result, size, [(v, result.witness_groups(v)) for v in shown],
                         dict(values) if values is not None else None, full_path)
    if threshold:
        from tc0sim.interp.threshold import account

        if spec.precision is None:
            raise ConfigError("--gates threshold needs the model file's precision")
        report.threshold = account(graph, result, spec.precision)
    report.resources = _resources(started, built, analysed, depth_cpu)
    return report
