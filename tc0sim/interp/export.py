"""The export interpreter: the tensor-level DAG as GraphML, DOT or JSON (docs/cli.md, ``tc0sim graph``).

JSON round-trips exactly (``from_json(to_json(g))`` has the same nodes, attributes, inputs,
outputs and input defaults): constants are "p/q" strings, gather indices nested lists, tuples
tagged, default values of floating inputs hexadecimal float64 strings. GraphML goes
through networkx with string/int attributes; DOT is written by hand with one cluster per operator
scope and the first critical path in bold red.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from tc0sim.errors import ConfigError, GraphError
from tc0sim.interp.depth import DepthResult
from tc0sim.ir.dag import Graph, Node, Scope
from tc0sim.ir.graph import SHAPE_RULES
from tc0sim.ir.primitives import PRIMITIVES
from tc0sim.ir.vectors import to_dict

FORMAT = "tc0sim-graph"
VERSION = 1


def _encode(value: Any) -> Any:
    """JSON-ready form of a node attribute; non-JSON types are tagged so ``_decode`` restores them."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, Fraction):
        return {"fraction": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            flat = [f"{Fraction(v).numerator}/{Fraction(v).denominator}" for v in value.reshape(-1)]
            return {"fractions": flat, "shape": list(value.shape)}
        if np.issubdtype(value.dtype, np.integer):
            return {"ints": value.tolist(), "shape": list(value.shape), "dtype": str(value.dtype)}
    raise GraphError(f"cannot export attribute value {value!r} of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "fraction" in value:
        return Fraction(value["fraction"])
    if "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    if "fractions" in value:
        out = np.empty(len(value["fractions"]), dtype=object)
        for i, text in enumerate(value["fractions"]):
            out[i] = Fraction(text)
        return out.reshape(tuple(value["shape"]))
    if "ints" in value:
        return np.array(value["ints"], dtype=value["dtype"]).reshape(tuple(value["shape"]))
    raise GraphError(f"unknown tagged value {value!r} in graph JSON")


def _encode_default(name: str, value: Any) -> Any:
    """An input's default value: a float64 array as hexadecimal strings (exact), others as attributes."""
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return {"floats": [float(v).hex() for v in array.astype(np.float64).reshape(-1)], "shape": list(array.shape)}
    if array.dtype.kind in "iub":
        return _encode(array.astype(np.int64))
    raise GraphError(f"cannot export the default value of input {name!r} (dtype {array.dtype})")


def _decode_default(value: Any) -> Any:
    if isinstance(value, dict) and "floats" in value:
        return np.array([float.fromhex(v) for v in value["floats"]], dtype=np.float64).reshape(tuple(value["shape"]))
    return _decode(value)


def critical_path(depth_result: DepthResult | None) -> list[int]:
    """Node ids of the witness of the first critical vector ([] without a depth result)."""
    if depth_result is None or not depth_result.critical:
        return []
    return [n.id for n in depth_result.witness(depth_result.critical[0])]


def to_json(graph: Graph, depth_result: DepthResult | None = None) -> dict[str, Any]:
    """The whole graph as a JSON-ready dict (exact: see ``from_json``); with a depth result it also
    carries the critical vectors and the critical path (ignored by ``from_json``)."""
    graph = graph.flat()
    marked = {"critical": [to_dict(v, full=True) for v in depth_result.critical]} if depth_result else {}
    if depth_result:
        marked["critical_path"] = critical_path(depth_result)
    return {
        **marked,
        "format": FORMAT,
        "version": VERSION,
        "nodes": [
            {
                "id": n.id,
                "prim": n.prim.name,
                "name": n.name,
                "shape": list(n.shape),
                "inputs": list(n.inputs),
                "scope": [[s.name, s.ref] for s in n.scope],
                "attrs": {k: _encode(v) for k, v in n.attrs.items()},
            }
            for n in graph.nodes
        ],
        "inputs": dict(graph.inputs),
        "outputs": dict(graph.outputs),
        "defaults": {name: _encode_default(name, v) for name, v in graph.defaults.items()},
    }


def from_json(data: dict[str, Any]) -> Graph:
    """Rebuild a Graph from ``to_json`` output, re-checking every node's primitive, inputs and shape."""
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise GraphError(f"not a {FORMAT} version {VERSION} document")
    graph = Graph()
    for position, item in enumerate(data["nodes"]):
        name, node_id = item["prim"], item["id"]
        prim = PRIMITIVES.get(name) if isinstance(name, str) else None
        if prim is None or prim.role == "structure":  # a flat graph has no call or result
            raise GraphError(f"node {node_id}: unknown primitive {name!r}")
        if node_id != position or any(not 0 <= i < position for i in item["inputs"]):
            raise GraphError(f"node {node_id}: nodes must be numbered in topological order")
        attrs = {k: _decode(v) for k, v in item["attrs"].items()}
        inputs = tuple(int(i) for i in item["inputs"])
        shape = tuple(int(d) for d in item["shape"])
        computed = tuple(SHAPE_RULES[prim]([graph.nodes[i].shape for i in inputs], attrs))
        if computed != shape:
            raise GraphError(f"node {node_id} ({name}): recorded shape {shape} but operands give {computed}")
        scope = tuple(Scope(name, ref) for name, ref in item["scope"])
        graph.nodes.append(Node(node_id, prim, shape, inputs, attrs, scope, item["name"]))
    graph.inputs = {k: int(v) for k, v in data["inputs"].items()}
    graph.outputs = {k: int(v) for k, v in data["outputs"].items()}
    graph.defaults = {k: _decode_default(v) for k, v in data.get("defaults", {}).items()}
    for name, value in graph.defaults.items():
        node = graph.inputs.get(name)
        if node is None or tuple(np.shape(value)) != graph.nodes[node].shape:
            raise GraphError(f"default value of {name!r}: no input of that name and shape {tuple(np.shape(value))}")
    return graph


def _attr_text(node: Node) -> str:
    return json.dumps({k: _encode(v) for k, v in node.attrs.items() if k != "value"}, sort_keys=True)


def to_graphml(graph: Graph, path: str | Path, depth_result: DepthResult | None = None) -> None:
    """GraphML via networkx: node attributes prim, symbol, shape, size, scope, name, attrs (JSON text),
    and ``critical`` (true on the nodes and edges of the critical path, given a depth result)."""
    graph = graph.flat()
    path_ids = critical_path(depth_result)
    on_path, path_edges = set(path_ids), set(zip(path_ids, path_ids[1:]))
    g = nx.DiGraph()
    for n in graph.nodes:
        g.add_node(
            n.id,
            prim=n.prim.name,
            symbol=n.prim.symbol or "",
            shape="x".join(map(str, n.shape)) or "scalar",
            size=n.size,
            scope=n.scope_path,
            name=n.name,
            attrs=_attr_text(n),
            output=",".join(k for k, v in graph.outputs.items() if v == n.id),
            critical=n.id in on_path,
        )
    for n in graph.nodes:
        for position, i in enumerate(n.inputs):
            if not g.has_edge(i, n.id):
                g.add_edge(i, n.id, operand=position, critical=(i, n.id) in path_edges)
    nx.write_graphml(g, str(path))


def _quote(*lines: str) -> str:
    """A DOT string literal of ``lines`` joined by DOT line breaks."""
    escaped = (t.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") for t in lines)
    return '"' + "\\n".join(escaped) + '"'


def to_dot(graph: Graph, path: str | Path, depth_result: DepthResult | None = None) -> None:
    """Graphviz DOT: nodes labelled by primitive, shape and scope, nested clusters per operator scope,
    and (given a depth result) the witness of the first critical vector in bold red."""
    graph = graph.flat()
    path_ids = critical_path(depth_result)
    on_path = set(path_ids)
    path_edges = set(zip(path_ids, path_ids[1:]))

    tree: dict[tuple[Scope, ...], list[Node]] = {}
    for n in graph.nodes:
        tree.setdefault(n.scope, []).append(n)
    prefixes = sorted({s[:k] for s in tree for k in range(1, len(s) + 1)}, key=lambda p: (len(p), str(p)))
    children: dict[tuple[Scope, ...], list[tuple[Scope, ...]]] = {}
    for p in prefixes:
        children.setdefault(p[:-1], []).append(p)

    lines = ["digraph tc0sim {", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    cluster_ids = {p: i for i, p in enumerate(prefixes)}

    def node_line(n: Node, indent: str) -> str:
        shape = "×".join(map(str, n.shape)) or "scalar"
        label = _quote(f"{n.prim.name} {shape}", n.name, *([n.scope_path] if n.scope else []))
        style = ', color=red, penwidth=3, fontcolor=red, style=bold' if n.id in on_path else ""
        if n.prim.is_wiring and n.id not in on_path:
            style = ", style=dashed"
        return f"{indent}n{n.id} [label={label}{style}];"

    def emit(prefix: tuple[Scope, ...], indent: str) -> None:
        for n in tree.get(prefix, []):
            lines.append(node_line(n, indent))
        for child in children.get(prefix, []):
            lines.append(f"{indent}subgraph cluster_{cluster_ids[child]} {{")
            lines.append(f"{indent}  label={_quote(str(child[-1]))};")
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit((), "  ")
    for n in graph.nodes:
        for i in dict.fromkeys(n.inputs):
            style = " [color=red, penwidth=3]" if (i, n.id) in path_edges else ""
            lines.append(f"  n{i} -> n{n.id}{style};")
    for k, (name, i) in enumerate(graph.outputs.items()):
        lines.append(f"  out{k} [label={_quote(name)}, shape=plaintext];")
        lines.append(f"  n{i} -> out{k};")
    lines.append("}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write(graph: Graph, path: str | Path, depth_result: DepthResult | None = None) -> None:
    """Write ``graph`` in the format its suffix names: .graphml, .dot or .json."""
    suffix = Path(path).suffix.lower()
    if suffix == ".graphml":
        to_graphml(graph, path, depth_result)
    elif suffix == ".dot":
        to_dot(graph, path, depth_result)
    elif suffix == ".json":
        Path(path).write_text(json.dumps(to_json(graph, depth_result), indent=1) + "\n", encoding="utf-8")
    else:
        raise ConfigError(f"unknown graph format {suffix or '(none)'!r} for {path}; expected .graphml, .dot or .json")
