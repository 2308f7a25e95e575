"""The compiled ⊕ pass of the fast engine (tc0sim.engines.fast.jit_sum, docs/varspeed.md) against
the MPFR engine: sums over the first, a middle and the last axes, held terms and a fused map's
blocks; exact ties at p bits (integer sums of ±1, the samplers' counts), near-midpoints,
cancellation to zero, tiny terms, and a sum that overflows (the same error)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from tc0sim import engines
from tc0sim.engines import plan
from tc0sim.engines.fast import memory as fast_memory
from tc0sim.engines.fast import jit_sum, reduce
from tc0sim.fastfp import Kernels
from tc0sim.fp import FpArithmeticError
from tc0sim.ir.graph import Builder

PRECISIONS = [2, 8, 11, 24]


@pytest.fixture
def kernel_calls(monkeypatch) -> list[int]:
    """Counts the compiled pass's calls (each test checks that it ran), on blocks of any size."""
    calls: list[int] = []
    original = jit_sum.axis_sums

    def counted(*args, **kwargs):
        found = original(*args, **kwargs)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(jit_sum, "axis_sums", counted)
    monkeypatch.setattr(reduce, "JIT_SUM_MIN_TERMS", 1)
    monkeypatch.setattr(fast_memory, "JIT_COLD_ELEMENTS", 0)  # the kernel for graphs of any size
    return calls


def _graph(shape: tuple[int, ...], axis: int, fused: bool):
    b = Builder()
    x = b.input("x", shape)
    b.output("out", b.sum(b.neg(x) if fused else x, axis=axis))
    return b.graph


def _evaluate(graph, x: np.ndarray, p: int, engine: str, chunk: int | None):
    try:
        return engines.evaluate(graph, {"x": x}, plan(graph, p, engine, chunk=chunk), stats=engines.EvalStats())
    except FpArithmeticError as e:
        return type(e), str(e)


def _same_as_mpfr(shape: tuple[int, ...], axis: int, x: np.ndarray, p: int, fused: bool, chunk: int | None = 64) -> object:
    graph = _graph(shape, axis, fused)
    fast, mpfr = _evaluate(graph, x, p, "fast", chunk), _evaluate(graph, x, p, "mpfr", None)
    if isinstance(mpfr, tuple):
        assert fast == mpfr
        return mpfr
    assert isinstance(fast, dict), fast
    exact = [Fraction(*v.as_integer_ratio()) for v in mpfr["out"].ravel()]
    assert [Fraction(*v.as_integer_ratio()) for v in fast["out"].ravel()] == exact
    return mpfr


def _p_bit(rng: np.random.Generator, p: int, shape: tuple[int, ...], exponents: tuple[int, int]) -> np.ndarray:
    """Random p-bit values m·2^e (m of exactly p bits, random sign), e uniform in ``exponents``."""
    m = rng.integers(1 << (p - 1), 1 << p, size=shape) * rng.choice([-1, 1], size=shape)
    return np.ldexp(m.astype(np.float64), rng.integers(*exponents, size=shape) - p)


@pytest.mark.parametrize("p", PRECISIONS)
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("fused", [False, True])
def test_signed_counts_tie_at_p_bits(p: int, axis: int, fused: bool, kernel_calls: list[int]) -> None:
    """Terms in {−1, 0, 1}: integer sums, many of them exact midpoints between p-bit neighbours
    (e.g. 2^p + 1), and zeros by cancellation."""
    rng = np.random.default_rng(p + 10 * axis)
    x = rng.integers(-1, 2, size=(3, 300, 5)).astype(np.float64)
    x[1] = np.abs(x[1])  # sums up to 300: above 2^p for p = 2, 8
    x[2, :, 0] = 0.0
    _same_as_mpfr(x.shape, axis, x, p, fused)
    assert any(kernel_calls)


@pytest.mark.parametrize("p", [8, 11, 24])
def test_near_midpoints_and_cancellation(p: int, kernel_calls: list[int]) -> None:
    """p-bit terms over a wide exponent span, each column followed by its own negation but one
    element (the sum is that element: cancellation), and columns whose sum is a p-bit value plus
    2^-60 of it (a hair off the midpoint or the value)."""
    rng = np.random.default_rng(100 + p)
    x = _p_bit(rng, p, (2, 64, 7), (-30, 30))
    x[:, 32:, :] = -x[:, :32, :]
    x[:, 32, :] = 0.0
    x[1, :, 3] = 0.0
    x[1, 0:3, 3] = 1.0, 2.0 ** -p, 2.0 ** -60  # 1 + half an ulp at p bits (a midpoint), and a hair
    x[1, :, 4] = 0.0
    x[1, 0:2, 4] = 1.0, 2.0 ** -p  # the midpoint itself: ties to even
    _same_as_mpfr(x.shape, 1, x, p, False)
    _same_as_mpfr(x.shape, 1, x, p, True, chunk=200)
    assert any(kernel_calls)


@pytest.mark.parametrize("p", [8, 24])
def test_tiny_terms_and_overflow(p: int, kernel_calls: list[int]) -> None:
    """Terms near the bottom of F_p's exponent range sum exactly; sums of terms near the top
    overflow F_8 (the MPFR engine's error, the same message) or binary64 (p = 24: mpfr values)."""
    rng = np.random.default_rng(7 + p)
    low, high = math.frexp(Kernels(p).lo)[1], math.frexp(Kernels(p).hi)[1]  # F_p's range at p bits
    tiny = _p_bit(rng, p, (4, 50, 3), (low, low + 4))
    _same_as_mpfr(tiny.shape, 1, tiny, p, False)
    huge = np.abs(_p_bit(rng, p, (4, 50, 3), (high - 3, high)))
    out = _same_as_mpfr(huge.shape, 1, huge, p, False)
    if p == 8:  # F_8 ends at 2^256: the sums overflow
        assert isinstance(out, tuple) and issubclass(out[0], FpArithmeticError)
    else:  # F_24 reaches beyond binary64: the sums are held as mpfr values
        assert isinstance(out, dict) and out["out"][0, 0] > np.finfo(np.float64).max
    assert any(kernel_calls)


def test_views_that_need_a_copy_are_left_to_numpy() -> None:
    """Axes not adjacent, or a strided view that cannot be seen as [before, reduced, after]."""
    x = np.zeros((4, 5, 6))
    assert jit_sum.as_runs(x, (0, 2)) is None
    assert jit_sum.as_runs(x[:, :, ::2].transpose(0, 2, 1), (1, 2)) is None
    assert jit_sum.as_runs(x, (1,)).shape == (4, 5, 6)
    assert jit_sum.as_runs(x, (1, 2)).shape == (4, 30, 1)
