"""Graph JSON keeps ``Graph.defaults`` (a traced module's own parameters): exact float64 values,
integer inputs, a wrong default refused; an evaluation of the reloaded graph uses them."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tc0sim.errors import GraphError
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.export import from_json, to_json
from tc0sim.ir.graph import Builder

HARD = [0.1, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1 / 3, -2.5, 1e-310]
"""Values whose decimal or binary forms are easy to get wrong: the smallest subnormal, the largest
finite, a negative zero, a non-terminating binary fraction."""


def bits(values):
    return [struct.pack("<d", float(v)) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def graph_with_defaults():
    b = Builder()
    w = b.input("w", (2, 4), role="weight")
    x = b.input("x", (2, 4))
    k = b.input("k", (3,))
    b.output("out", b.mul(w, x))
    b.output("k", k)
    b.graph.defaults["w"] = np.array(HARD, dtype=np.float64).reshape(2, 4)
    b.graph.defaults["k"] = np.array([3, -1, 0], dtype=np.int64)
    return b.graph


def test_defaults_round_trip_exactly():
    g = graph_with_defaults()
    back = from_json(json.loads(json.dumps(to_json(g))))
    assert list(back.defaults) == ["w", "k"]
    assert bits(back.defaults["w"]) == bits(HARD) and back.defaults["w"].shape == (2, 4)
    assert back.defaults["k"].dtype == np.int64 and back.defaults["k"].tolist() == [3, -1, 0]


def test_reloaded_graph_evaluates_with_its_defaults():
    b = Builder()
    w = b.input("w", (3,), role="weight")
    x = b.input("x", (3,))
    b.output("out", b.mul(w, x))
    b.graph.defaults["w"] = np.array([0.5, -3.0, 0.25])
    back = from_json(json.loads(json.dumps(to_json(b.graph))))
    out = evaluate(back, 24, inputs={"x": np.array([2.0, 1.0, 8.0])}, values="float64")["out"]
    assert out.tolist() == [1.0, -3.0, 2.0]  # w · x exactly: each product is a float with ≤ 24 bits


def test_a_default_without_its_input_is_refused():
    data = to_json(graph_with_defaults())
    data["defaults"]["nope"] = data["defaults"].pop("k")
    with pytest.raises(GraphError, match="nope"):
        from_json(data)
    data = to_json(graph_with_defaults())
    data["defaults"]["w"]["shape"] = [4, 2]
    with pytest.raises(GraphError, match="'w'"):
        from_json(data)


def test_a_document_without_defaults_still_loads():
    data = to_json(graph_with_defaults())
    del data["defaults"]
    assert from_json(data).defaults == {}
