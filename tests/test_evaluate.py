"""The evaluate interpreter against an exact-rational evaluation of the same formula."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from reference import round_fraction

from tc0sim.errors import ConfigError, MissingRuleError
from tc0sim.fp import DivisionByZero, Format, FpOverflow, NegativeSqrt
from tc0sim.interp.evaluate import evaluate, random_inputs
from tc0sim.ir.graph import Builder, Node


def exact(F: Format, arr: np.ndarray) -> list:
    return [F.to_fraction(v) for v in arr.reshape(-1)]


@pytest.mark.parametrize("p", [3, 8, 11, 24])
def test_matmul_plus_bias_then_relu_rounds_each_primitive_once(p: int) -> None:
    b = Builder()
    x = b.input("X", (2, 3))
    w = b.input("W", (3, 2))
    bias = b.constant([Fraction(1, 3), Fraction(-2, 7)])
    prod = b.mul(b.reshape(x, (2, 3, 1)), b.reshape(w, (1, 3, 2)))
    y = b.relu(b.add(b.sum(prod, axis=1), bias))
    b.output("y", y)
    xs = [[0.75, -1.5, 2.25], [1 / 3, 0.1, -0.6]]
    ws = [[1.1, -0.2], [0.3, 0.9], [-2.0, 0.5]]
    out = evaluate(b.graph, p, {"X": np.array(xs), "W": np.array(ws)})["y"]
    r = lambda v: round_fraction(Fraction(v), p)  # noqa: E731
    expected = []
    for i in range(2):
        for j in range(2):
            s = round_fraction(sum(r(r(xs[i][k]) * r(ws[k][j])) for k in range(3)), p)
            expected.append(max(Fraction(0), r(s + r([Fraction(1, 3), Fraction(-2, 7)][j]))))
    assert exact(Format(p), out) == expected


def test_wiring_follows_numpy() -> None:
    b = Builder()
    x = b.input("X", (2, 3))
    t = b.transpose(x, (1, 0))
    g = b.gather(t, [[2, 0], [1, 1]], axis=0)
    padded = b.pad(b.slice(x, 1, 0, 3, 2), ((1, 0), (0, 1)))
    joined = b.concat([g, b.reshape(b.slice(t, 0, 0, 2), (1, 2, 2))], axis=0)
    b.output("g", g)
    b.output("padded", padded)
    b.output("neg", b.neg(b.broadcast(b.slice(x, 0, 1, 2), (3, 3))))
    b.output("joined", joined)
    xs = np.arange(6, dtype=float).reshape(2, 3)
    out = evaluate(b.graph, 8, {"X": xs})
    F = Format(8)
    np.testing.assert_array_equal(F.to_float64_array(out["g"]), np.take(xs.T, [[2, 0], [1, 1]], axis=0))
    np.testing.assert_array_equal(F.to_float64_array(out["padded"]), np.pad(xs[:, 0:3:2], ((1, 0), (0, 1))))
    np.testing.assert_array_equal(F.to_float64_array(out["neg"]), -np.broadcast_to(xs[1:2], (3, 3)))
    expected_join = np.concatenate([np.take(xs.T, [[2, 0], [1, 1]], axis=0), xs.T[0:2].reshape(1, 2, 2)], axis=0)
    np.testing.assert_array_equal(F.to_float64_array(out["joined"]), expected_join)


def test_errors_name_the_node_and_operator() -> None:
    b = Builder()
    x = b.input("X", (2,))
    with b.scope("layernorm", ref="VAR Lemma 5.5"):
        y = b.div(b.constant([1, 1]), b.sub(x, x))
    b.output("y", y)
    with pytest.raises(DivisionByZero, match=r"node div\d+ in operator layernorm"):
        evaluate(b.graph, 11, {"X": [1.0, 2.0]})

    b = Builder()
    x = b.input("X", (1,))
    b.output("y", b.sqrt(x))
    with pytest.raises(NegativeSqrt, match="node sqrt"):
        evaluate(b.graph, 11, {"X": [-1.0]})


def test_overflow_at_p2_names_node() -> None:
    b = Builder()
    x = b.input("X", (1,))
    with b.scope("attention"):
        y = b.mul(b.mul(x, x), b.mul(x, x))
    b.output("y", y)
    with pytest.raises(FpOverflow, match="in operator attention"):
        evaluate(b.graph, 2, {"X": [3.0]})  # F_2 tops out at 3·2^3 = 24; 3·3 rounds to 8, 8·8 = 64 overflows


def test_inputs_are_checked_and_drawn_reproducibly() -> None:
    b = Builder()
    x = b.input("X", (2, 2))
    w = b.input("W", (2, 2), role="weight")
    b.output("y", b.add(x, w))
    with pytest.raises(ConfigError, match="shape"):
        evaluate(b.graph, 8, {"X": np.zeros((3, 2))})
    with pytest.raises(ConfigError, match="unknown input"):
        evaluate(b.graph, 8, {"Z": np.zeros((2, 2))})
    a = random_inputs(b.graph, seed=5, scale=0.5)
    assert a["X"].shape == (2, 2) and not np.array_equal(a["X"], a["W"])
    np.testing.assert_array_equal(a["X"], random_inputs(b.graph, seed=5, scale=0.5)["X"])
    y1 = evaluate(b.graph, 53, seed=5, scale=0.5)["y"]
    np.testing.assert_array_equal(Format(53).to_float64_array(y1), a["X"] + a["W"])


def test_primitive_without_rule_is_an_error() -> None:
    b = Builder()
    x = b.input("X", (1,))
    b.output("y", b.exp(x))
    b.graph.nodes[-1] = Node(1, "frobnicate", (1,), (0,), {}, (), "frobnicate1")
    with pytest.raises(MissingRuleError, match="'evaluate'.*'frobnicate'"):
        evaluate(b.graph, 8, {"X": [0.5]})
