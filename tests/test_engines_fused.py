"""A ⊕ whose products are joined to a bias by a concat (conv2d, linear) is evaluated fused, piece
by piece, on the MPFR and fast engines (docs/semantics.md §2.5): the same bits as the exact
single-rounding reference (tests/reference.py, Fractions), ties included, the same errors as the
unfused evaluation, and an estimated peak that follows the pieces, not the product tensor.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import reference as R
from tc0sim import engines
from tc0sim.engines import ENGINES, plan
from tc0sim.engines import blocking
from tc0sim.engines.fast import memory as fast_memory
from tc0sim.engines.mpfr import MpfrMemory
from tc0sim.fp import FpArithmeticError
from tc0sim.kinds import build

CONV = ("h", "w", "c", "k", "hk", "wk")


def _fractions(value: np.ndarray) -> np.ndarray:
    """An object array of mpfr values as exact Fractions."""
    return np.vectorize(lambda v: Fraction(*v.as_integer_ratio()), otypes=[object])(value)


def _tie_inputs(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Small integers and halves: at p = 4 many products and sums are exact ties (x.5 ulp)."""
    rng = np.random.default_rng(seed)
    return {name: rng.integers(-12, 13, size=shape) / 2.0 for name, shape in shapes.items()}


def _linear_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    out = np.empty(x.shape[:-1] + (w.shape[0],), dtype=object)
    for index in np.ndindex(out.shape):
        row, o = index[:-1], index[-1]
        terms = [R.round_fraction(x[row + (i,)] * w[o, i], p) for i in range(w.shape[1])] + [b[o]]
        out[index] = R.round_fraction(sum(terms, Fraction(0)), p)
    return out


@pytest.mark.parametrize("p", [4, 5, 11, 24])
@pytest.mark.parametrize("engine, chunk", [("fast", 7), ("fast", None), ("mpfr", 5), ("mpfr", None)])
def test_conv2d_with_bias_fused_matches_the_exact_reference(p: int, engine: str, chunk: int | None) -> None:
    dims = dict(zip(CONV, (5, 4, 3, 2, 3, 3)))
    graph = build("conv2d", dims)
    inputs = _tie_inputs({"X": (5, 4, 3), "K": (2, 3, 3, 3), "b": (2,)}, seed=p)
    stats = engines.EvalStats()
    out = engines.evaluate(graph, inputs, plan(graph, p, engine, chunk=chunk), stats=stats)["out"]
    rounded = {name: R.to_fractions(v, p) for name, v in inputs.items()}
    expected = R.exact_conv2d(rounded["X"], rounded["K"], rounded["b"], p)
    assert _fractions(out).tolist() == expected.tolist()


@pytest.mark.parametrize("p", [4, 8, 24])
@pytest.mark.parametrize("engine, chunk", [("fast", 5), ("mpfr", 3)])
def test_linear_with_bias_fused_matches_the_exact_reference(p: int, engine: str, chunk: int) -> None:
    graph = build("linear", {"n": 6, "d_in": 7, "d_out": 4})
    inputs = _tie_inputs({"X": (6, 7), "weight": (4, 7), "bias": (4,)}, seed=10 + p)
    out = engines.evaluate(graph, inputs, plan(graph, p, engine, chunk=chunk))["out"]
    rounded = {name: R.to_fractions(v, p) for name, v in inputs.items()}
    assert _fractions(out).tolist() == _linear_reference(rounded["X"], rounded["weight"], rounded["bias"], p).tolist()


def test_the_joined_chain_is_found_and_fused_on_both_engines() -> None:
    """conv2d's products, their reshape and the concat with the bias are the chain; both engines'
    memory models fuse it (the fast one when the products exceed one block)."""
    graph = build("conv2d", dict(zip(CONV, (5, 4, 3, 2, 3, 3)))).flat()
    live, keep = graph.live(), set(graph.outputs.values())
    (chain,) = blocking.joined_feeders(live, keep, blocking.is_map, blocking.is_reduction)
    assert [n.prim.name for n in chain] == ["mul", "reshape", "concat"]
    assert {n.id for n in chain} <= MpfrMemory(24).fused(live, keep)
    assert {n.id for n in chain} <= fast_memory.FastMemory(24, 7).fused(live, keep)


def test_an_error_in_the_fused_products_is_the_unfused_error(monkeypatch) -> None:
    """A product that overflows names the same node and element with or without fusion."""
    graph = build("linear", {"n": 3, "d_in": 4, "d_out": 2})
    inputs = {"X": np.full((3, 4), 2.0**100), "weight": np.full((2, 4), 2.0**100), "bias": np.ones(2)}
    inputs["weight"][1, 2] = 2.0**200  # overflows at p = 8 (exponent range [-256, 256))
    messages = {}
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(blocking, "joined_feeders", lambda *args: [])  # every engine's fused_maps reads it
        for engine, chunk in (("mpfr", 2), ("fast", 2)):
            with pytest.raises(FpArithmeticError) as info:
                engines.evaluate(graph, inputs, plan(graph, 8, engine, chunk=chunk))
            messages[fused, engine] = str(info.value)
    assert len(set(messages.values())) == 1, messages


@pytest.mark.parametrize("engine, side, channels", [("mpfr", 24, 16), ("fast", 64, 32)])
def test_the_estimate_no_longer_holds_the_product_tensor(engine: str, side: int, channels: int) -> None:
    """conv2d side x side x channels -> channels (3 x 3): the estimate is far below holding the
    products (8 bytes a float64, 8 + 100 + p/8 bytes an mpfr value, per element); the fast
    engine's block work arrays (48 bytes x 2^18) need the larger case to be outgrown."""
    graph = build("conv2d", dict(zip(CONV, (side, side, channels, channels, 3, 3))))
    products = side * side * channels * 3 * 3 * channels
    per_value = 8 if engine == "fast" else 8 + 100 + 24 // 8
    assert ENGINES[engine].memory_bytes(graph, 24, None) < products * per_value / 4
