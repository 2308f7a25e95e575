"""The evaluate interpreter against an exact-rational evaluation of the same formula."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from reference import round_fraction

from tc0sim.errors import ConfigError, MissingRuleError
from tc0sim.fp import DivisionByZero, Format, FpOverflow, NegativeSqrt
from tc0sim.interp.evaluate import evaluate, evaluation_bytes, random_inputs
from tc0sim.ir.graph import Builder, Node
from tc0sim.ir.primitives import Primitive


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
    b.graph.nodes[-1] = Node(1, Primitive("frobnicate", "d_std", 1, frozenset({"elementwise"}), "not defined"), (1,), (0,), {}, (), "frobnicate1")
    with pytest.raises(MissingRuleError, match="'evaluate'.*'frobnicate'"):
        evaluate(b.graph, 8, {"X": [0.5]})


def _matmul_graph(n1: int, d: int, n2: int, products_out: bool = False):
    """X·W as products (n1, d, n2) and a ⊕ over d; with ``products_out`` the products are an
    output too, so no engine may fuse them with the sum (the unfused order of evaluation)."""
    b = Builder()
    x = b.input("X", (n1, d))
    w = b.input("W", (d, n2))
    with b.scope("matmul"):
        prod = b.mul(b.broadcast(b.reshape(x, (n1, d, 1)), (n1, d, n2)), b.broadcast(b.reshape(w, (1, d, n2)), (n1, d, n2)))
        b.output("y", b.sum(prod, axis=1))
    if products_out:
        b.output("products", prod)
    return b.graph


def test_the_mpfr_engine_sums_products_in_pieces_never_holding_them_whole(monkeypatch) -> None:
    """A product read only by a ⊕ is computed with it, PIECE_ELEMENTS (here 20) at a time; every
    product is rounded once and every sum is the exact sum rounded once (exact-rational oracle)."""
    from tc0sim.engines import blocking as evaluate_module

    monkeypatch.setattr(evaluate_module, "PIECE_ELEMENTS", 20)
    sizes: list[int] = []
    original = Format.map

    def spy(self, name, *arrays, **kw):
        sizes.append(int(np.size(arrays[0])))
        return original(self, name, *arrays, **kw)

    monkeypatch.setattr(Format, "map", spy)
    p = 30
    rng = np.random.default_rng(7)
    xs, ws = rng.standard_normal((5, 9)), rng.standard_normal((9, 7))
    out = evaluate(_matmul_graph(5, 9, 7), p, {"X": xs, "W": ws}, engine="mpfr")["y"]
    r = lambda v: round_fraction(Fraction(v), p)  # noqa: E731
    expected = [round_fraction(sum(r(r(xs[i, k]) * r(ws[k, j])) for k in range(9)), p) for i in range(5) for j in range(7)]
    assert exact(Format(p), out) == expected
    assert sizes and max(sizes) <= 20, "the 315 products were never computed at once"


def _first_error(graph, inputs: dict, p: int) -> str:
    with pytest.raises(FpOverflow) as info:
        evaluate(graph, p, inputs, engine="mpfr")
    return str(info.value)


@pytest.mark.parametrize("case", ["later piece holds the first product", "sum fails before a product", "only a sum fails"])
def test_errors_of_products_summed_in_pieces_are_those_of_the_unfused_order(monkeypatch, case: str) -> None:
    """The serial order computes every product before any sum: the first failing product in
    row-major order is raised even when a piece read earlier fails later in that order or in its
    sum; otherwise the first failing sum, named by its output element in the whole node."""
    from tc0sim.engines import blocking as evaluate_module

    monkeypatch.setattr(evaluate_module, "PIECE_ELEMENTS", 18)  # pieces (i, :, 2j:2j+2) of (5, 9, 7)
    xs, ws = np.ones((5, 9)), np.ones((9, 7))
    if case == "later piece holds the first product":
        xs[0, 5] = ws[5, 3] = xs[0, 2] = ws[2, 6] = 2.0**10  # products (0,5,3) and, first, (0,2,6) overflow
    elif case == "sum fails before a product":
        xs[0, :] = ws[:, 0] = 2.0**9  # the sum (0, 0) overflows, its products do not
        xs[1, 4], ws[4, 5] = 2.0**11, 2.0**9
    else:
        xs[3, :] = ws[:, 5] = 2.0**9
    fused = _first_error(_matmul_graph(5, 9, 7), {"X": xs, "W": ws}, 4)
    unfused = _first_error(_matmul_graph(5, 9, 7, products_out=True), {"X": xs, "W": ws}, 4)
    assert fused == unfused
    expected = {"later piece holds the first product": "(element (0, 2, 6))", "sum fails before a product": "node mul",
                "only a sum fails": "(element (3, 5))"}[case]
    assert expected in fused


# --- memory estimate (evaluation_bytes) --------------------------------------------------------


def _measured_peak(graph, p: int, engine: str) -> int:
    """tracemalloc's peak over one evaluation, the fast engine's work arrays and pool emptied first.

    The graph is evaluated once untraced before: modules a kernel imports on first use (numba and its
    compiled kernels) and caches filled once per process are not the evaluation's working memory
    (the plan charges the compiled kernels' resident size separately, memory.JIT_BYTES)."""
    import tracemalloc

    from tc0sim.engines.fast import memory

    inputs = random_inputs(graph, 0, 0.3)
    evaluate(graph, p, inputs, engine=engine, values="native")
    memory._MEMORY.__init__()
    tracemalloc.start()
    try:
        evaluate(graph, p, inputs, engine=engine, values="native")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("engine, p", [("fast", 24), ("mpfr", 24), ("mpfr", 113)])
def test_evaluation_bytes_bounds_the_measured_peak(engine: str, p: int) -> None:
    from tc0sim.kinds import build
    from tc0sim.modelfile import load_model
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    graphs = [
        build("matmul", {"n1": 48, "d": 48, "n2": 48}), build("attention", {"n": 48, "d": 16}),
        build("layernorm", {"n": 128, "c": 64}), load_model(examples / "var.yaml").build(8),
    ]
    b = Builder()  # erf has no fast kernel: the fast engine runs the MPFR rule on it
    b.output("y", b.erf(b.mul(b.input("x", (256, 256)), b.input("w", (256, 256)))))
    graphs.append(b.graph)
    for graph in graphs:
        measured, estimate = _measured_peak(graph, p, engine), evaluation_bytes(graph, p, engine)
        assert measured <= estimate, (graph, measured, estimate)
        if engine == "mpfr":
            assert estimate <= 2.5 * measured, (graph, measured, estimate)


def test_evaluation_bytes_follows_liveness_views_and_fusion() -> None:
    """By hand, from the rules of docs/cli.md: an mpfr value at p = 80 costs 8 + 100 + 10 bytes."""
    n, k, v = 1000, 7, 8 + 100 + 10
    b = Builder()
    x = b.input("x", (n,))
    y = b.mul(x, x)
    b.output("z", b.add(y, x))
    # at z: x, y and z held, and F.map's lists of its 2 operands and result plus a flat copy
    assert evaluation_bytes(b.graph, 80, "mpfr") == 3 * n * v + 8 * n * 4

    b = Builder()
    x = b.input("x", (n,))
    wide = b.broadcast(b.reshape(x, (1, n)), (k, n))  # views: no array of their own
    b.output("s", b.sum(b.mul(wide, wide), axis=0))  # the products are fused into the sum
    # at s: x and s held, and one piece of k·n products (one block: k·n < 2^14)
    assert evaluation_bytes(b.graph, 80, "mpfr") == n * v + n * v + k * n * (80 + v)


def test_evaluation_bytes_does_not_count_a_fused_product_tensor() -> None:
    from tc0sim.kinds import build

    graph = build("matmul", {"n1": 256, "d": 256, "n2": 256})
    held = 3 * 256 * 256 * (8 + 100 + 53 // 8)  # two operands and the output
    piece = (1 << 14) * (80 + 8 + 100 + 53 // 8)
    assert evaluation_bytes(graph, 53, "mpfr") == held + piece
    assert evaluation_bytes(graph, 24, "fast") < 64 * 2**20  # 10^7 products never held at once
