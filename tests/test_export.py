"""Export: exact JSON round trip, GraphML readable by networkx, DOT with the critical path highlighted."""

import json
import re
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest

from tc0sim.errors import ConfigError, GraphError
from tc0sim.interp.depth import depth
from tc0sim.interp.export import from_json, to_dot, to_graphml, to_json, write
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ops.matmul import matmul
from tc0sim.ir.vectors import from_dict


def sample_graph():
    """Every attribute kind: constants (Fractions), gather indices, pad widths, tuples, scopes."""
    b = Builder()
    x = b.input("X", (2, 3))
    w = b.input("W", (3, 2), role="weight")
    with b.scope("attention", ref="FlowAR Lemma 4.6"):
        s = b.exp(matmul(b, x, w))
    c = b.constant([[Fraction(1, 3), "0.1"], [2, -5]])
    mixed = b.concat([s, c], axis=0)
    picked = b.gather(mixed, [[0, 3], [2, 1]], axis=0)
    padded = b.pad(b.transpose(picked, (2, 1, 0)), [(0, 1), (1, 0), (0, 0)])
    sliced = b.slice(padded, 1, 0, 3, 2)
    b.output("out", b.sqrt(b.prod(sliced, axis=(0, 2))))
    b.output("side", b.sum(c, axis=None))
    return b.graph


def assert_same_graph(a, b):
    assert a.inputs == b.inputs and a.outputs == b.outputs
    assert len(a.nodes) == len(b.nodes)
    for m, n in zip(a.nodes, b.nodes):
        assert (m.id, m.prim.name, m.shape, m.inputs, m.scope, m.name) == (n.id, n.prim.name, n.shape, n.inputs, n.scope, n.name)
        assert m.attrs.keys() == n.attrs.keys()
        for key in m.attrs:
            u, v = m.attrs[key], n.attrs[key]
            if isinstance(u, np.ndarray):
                assert isinstance(v, np.ndarray) and u.dtype == v.dtype and u.shape == v.shape
                assert all(p == q and type(p) is type(q) for p, q in zip(u.reshape(-1), v.reshape(-1)))
            else:
                assert u == v and type(u) is type(v)


def test_json_round_trip_is_exact():
    g = sample_graph()
    text = json.dumps(to_json(g))
    back = from_json(json.loads(text))
    assert_same_graph(g, back)
    assert depth(back).critical == depth(g).critical
    assert size(back).as_dict() == size(g).as_dict()
    assert "1/3" in text and "1/10" in text


def test_from_json_rechecks_shapes():
    data = to_json(sample_graph())
    data["nodes"][3]["shape"] = [9, 9]
    with pytest.raises(GraphError, match="shape"):
        from_json(data)
    with pytest.raises(GraphError):
        from_json({"format": "something else"})


def test_graphml_is_readable_by_networkx(tmp_path):
    g = sample_graph()
    path = tmp_path / "g.graphml"
    to_graphml(g, path)
    read = nx.read_graphml(path)
    assert read.number_of_nodes() == len(g.nodes)
    exp_node = next(n for n in g.nodes if n.prim.name == "exp")
    data = read.nodes[str(exp_node.id)]
    assert data["prim"] == "exp" and data["symbol"] == "d_exp" and data["scope"] == "attention"
    assert data["size"] == 4
    assert read.has_edge(str(exp_node.inputs[0]), str(exp_node.id))


def test_dot_highlights_the_critical_path(tmp_path):
    g = sample_graph()
    result = depth(g)
    path = tmp_path / "g.dot"
    to_dot(g, path, result)
    text = path.read_text()
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    witness = result.witness(result.critical[0])
    for a, b in zip(witness, witness[1:]):
        assert re.search(rf"n{a.id} -> n{b.id} \[color=red", text)
    red_nodes = set(re.findall(r"n(\d+) \[label=[^\]]*color=red", text))
    assert red_nodes == {str(n.id) for n in witness}
    assert 'subgraph cluster_' in text and 'label="attention [FlowAR Lemma 4.6]"' in text
    assert text.count("{") == text.count("}")


def test_graphml_and_json_mark_the_critical_path(tmp_path):
    g = sample_graph()
    result = depth(g)
    witness = [n.id for n in result.witness(result.critical[0])]
    to_graphml(g, tmp_path / "g.graphml", result)
    read = nx.read_graphml(tmp_path / "g.graphml", node_type=int)
    assert [n for n, marked in read.nodes(data="critical") if marked] == sorted(witness)
    assert {(u, v) for u, v, marked in read.edges(data="critical") if marked} == set(zip(witness, witness[1:]))
    data = json.loads(json.dumps(to_json(g, result)))
    assert data["critical_path"] == witness
    assert [from_dict(v) for v in data["critical"]] == result.critical  # a quiet symbol (d_log) may be absent
    assert_same_graph(from_json(data), g)


def test_write_chooses_by_suffix(tmp_path):
    g = sample_graph()
    write(g, tmp_path / "g.json")
    assert_same_graph(g, from_json(json.loads((tmp_path / "g.json").read_text())))
    write(g, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    write(g, tmp_path / "g.graphml")
    nx.read_graphml(tmp_path / "g.graphml")
    with pytest.raises(ConfigError, match=".png"):
        write(g, tmp_path / "g.png")
