"""``tc0sim graph``: the tensor-level DAG of a model written as GraphML, DOT (critical path in red) or JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tc0sim.errors import ConfigError
from tc0sim.limits import GRAPH_SUFFIXES
from tc0sim.reports.base import Report, Section, as_spec

if TYPE_CHECKING:
    from tc0sim.ir.graph import Graph
    from tc0sim.modelfile import ModelSpec

SUFFIXES = GRAPH_SUFFIXES


@dataclass
class GraphReport(Report):
    """Where the DAG was written, how many live nodes it has and its inputs."""

    label: str
    output: str
    graph: Graph

    def lines(self) -> list[str]:
        """What the command prints: the file written, one line per input that is not a weight, and
        the weights summed up (a released model has hundreds)."""
        out = [f"wrote {self.output}: {len(self.graph.live()):,} live nodes of {self.label}"]
        weights, scalars = 0, 0
        for name, node_id in self.graph.inputs.items():
            node = self.graph.node(node_id)
            role = node.attrs.get("role", "input")
            if role == "weight":
                weights, scalars = weights + 1, scalars + math.prod(node.shape)
            else:
                out.append(f"  {role} {name}{list(node.shape)}")
        if weights:
            out.append(f"  {weights:,} weight tensors, {scalars:,} scalars (listed in the file written)")
        return out

    def sections(self) -> list[Section]:
        return [Section("", lines=self.lines())]

    def as_dict(self) -> dict[str, Any]:
        inputs = [{"name": name, "role": self.graph.node(i).attrs.get("role", "input"), "shape": list(self.graph.node(i).shape)}
                  for name, i in self.graph.inputs.items()]
        return {"output": self.output, "model": self.label, "live_nodes": len(self.graph.live()), "inputs": inputs}


def graph_report(model: str | Path | ModelSpec, output: str, n: int | None = None) -> GraphReport:
    """Build ``model`` at ``n`` and write its DAG to ``output`` (the format follows the suffix)."""
    from tc0sim.interp.depth import depth as depth_of
    from tc0sim.interp.export import write
    from tc0sim.io.outputs import atomic_path

    if Path(output).suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--output {output}: expected a .graphml, .dot or .json file name")
    spec, _ = as_spec(model)
    built = spec.build(n)
    result = depth_of(built)
    with atomic_path(output) as temporary:
        write(built, temporary, depth_result=result)
    return GraphReport(spec.label(n), output, built)
