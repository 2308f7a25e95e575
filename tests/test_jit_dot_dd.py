"""The fused product-sum kernel for 26 <= p <= 53 (tc0sim.engines.fast.jit_dot_dd, docs/fuseddot.md
"Precisions 26 to 53") against the MPFR engine and exact rationals: products that tie at p bits,
near-midpoint and cancelling sums, the range limits of Dekker's product, zeros of both signs, a
bias joined to the sum, one thread against two."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import reference as R
from engine_compare import outcome, p_bit, same_as_mpfr, same_bits_on_one_and_all_threads
from tc0sim.engines.fast import jit_dot_dd
from tc0sim.kinds import build

PRECISIONS = [26, 32, 40, 52, 53]


@pytest.fixture
def kernel_calls(monkeypatch) -> list[bool]:
    """Each call of the kernel, True when it sent the node to the unfused path (a product out of range)."""
    calls: list[bool] = []
    original = jit_dot_dd.rounded_sums

    def counted(*args, **kwargs):
        found = original(*args, **kwargs)
        calls.append(bool(found[2].any()))
        return found

    monkeypatch.setattr(jit_dot_dd, "rounded_sums", counted)
    return calls


CHUNK = 64
"""Elements per block of the engines' unfused paths (small: many blocks)."""


def _matmul(n1: int, d: int, n2: int):
    return build("matmul", {"n1": n1, "d": d, "n2": n2})


@pytest.mark.parametrize("p", PRECISIONS)
def test_products_that_tie_at_p_bits_round_to_even_like_mpfr_and_the_exact_rationals(p: int, kernel_calls) -> None:
    """(2^(p−1) + j)·3 has p + 1 or p + 2 bits: odd j gives a product exactly halfway between two
    p-bit values (ties to even), and the rows then sum such ties; rows that cancel exactly to 0."""
    d = 12
    j = np.arange(1, 2 * d, 2, dtype=np.float64)[:d]
    x = np.stack([2.0 ** (p - 1) + j, 2.0 ** (p - 1) + j + 1, -(2.0 ** (p - 1) + j), 2.0 ** (p - 1) + j[::-1]]) * 2.0**-p
    y = np.ones((d, 3)) * 3.0
    y[:, 1] = 0.75
    y[d // 2:, 2] = -3.0
    x[3, d // 2:] = x[3, : d // 2]  # with y[:, 2]: pairwise cancelling products, an exact 0
    graph = _matmul(4, d, 3)
    same_as_mpfr(graph, {"X": x, "Y": y}, p, CHUNK)
    out, _ = outcome(graph, {"X": x, "Y": y}, p, "fast", CHUNK)
    expected = R.Exact(p).matmul(R.to_fractions(x, p), R.to_fractions(y, p))
    assert [Fraction(*v.as_integer_ratio()) for v in out["out"].ravel()] == list(expected.ravel())
    assert out["out"][3, 2] == 0
    assert kernel_calls and not any(kernel_calls)


@pytest.mark.parametrize("p", PRECISIONS)
def test_near_midpoint_sums_and_cancellation_match_mpfr(p: int, kernel_calls) -> None:
    """Rows whose exact sum is a p-bit midpoint, or within far less than a binary64 ulp of one
    (a big term plus tiny terms of either sign), and rows cancelling far above their result."""
    rng = np.random.default_rng(100 + p)
    d = 16
    x = np.zeros((8, d))
    y = np.ones((d, 3))
    x[:, 0] = [1.0, 1.0, 1.0, 1.0, 1.0 + 2.0 ** (1 - p), 1.0, 1.0, 1.0]
    x[:, 1] = 2.0**-p  # with x[:, 0]: 1 + 2^-p, the midpoint of 1 and 1 + 2^(1−p)
    tiny = 2.0 ** -(p + 60)
    x[1, 2], x[2, 2], x[3, 2:4] = tiny, -tiny, (tiny, -tiny)
    x[5, 2:] = p_bit(rng, p, (d - 2,), (-120, -100))
    x[6, 2:4] = (2.0**90, -(2.0**90))  # cancellation far above the result
    x[7, 2:] = p_bit(rng, p, (d - 2,), (-2, 2))
    y[:, 1] = -1.0
    y[:, 2] = p_bit(rng, p, (d,), (0, 1))
    stats = same_as_mpfr(_matmul(8, d, 3), {"X": x, "Y": y}, p, CHUNK)
    assert kernel_calls and not any(kernel_calls) and stats.certified + stats.recomputed >= 24


@pytest.mark.parametrize("p", PRECISIONS)
def test_random_products_over_wide_exponents_match_mpfr(p: int, kernel_calls) -> None:
    """Random p-bit operands over 2^±40 (products anywhere in their binades, sums of very
    different magnitudes), zeros of both signs among them."""
    rng = np.random.default_rng(200 + p)
    x = p_bit(rng, p, (9, 33), (-40, 40))
    y = p_bit(rng, p, (33, 7), (-40, 40))
    x[rng.random(x.shape) < 0.2] = 0.0
    y[rng.random(y.shape) < 0.1] = -0.0
    x[0, :], y[:, 0] = -0.0, 0.0  # a row and a column of zeros: sums of ±0 only
    same_as_mpfr(_matmul(9, 33, 7), {"X": x, "Y": y}, p, CHUNK)
    assert kernel_calls and not any(kernel_calls)


@pytest.mark.parametrize("p", [32, 53])
def test_a_million_random_products_match_mpfr(p: int, kernel_calls) -> None:
    rng = np.random.default_rng(300 + p)
    x = p_bit(rng, p, (40, 250), (-3, 3))
    y = p_bit(rng, p, (250, 100), (-3, 3))
    stats = same_as_mpfr(_matmul(40, 250, 100), {"X": x, "Y": y}, p, CHUNK)
    assert kernel_calls and not any(kernel_calls) and stats.recomputed <= 40


@pytest.mark.parametrize("p", [26, 53])
@pytest.mark.parametrize("case", ["huge operands", "huge product", "tiny product", "sum overflow", "fits"])
def test_range_limits_give_mpfr_values_and_errors(p: int, case: str, kernel_calls) -> None:
    """Operands where Veltkamp's split would overflow, products beyond binary64 or below the
    exactness limit of Dekker's product (the node goes to the unfused path), sums beyond binary64
    of in-range products: the MPFR engine's values or error, same message and element."""
    x = np.ones((4, 10))
    y = np.ones((10, 3)) * 0.5
    if case == "huge operands":
        x[2, 3], y[3, 1] = 2.0**1000, 2.0**-1000
    elif case == "huge product":
        x[2, 3], y[3, 1] = 2.0**600, 2.0**600
    elif case == "tiny product":
        x[1, 4], y[4, 2] = 2.0**-500, 2.0**-480
        x[1, 5], y[5, 2] = 2.0**-600, -(2.0**-600)
    elif case == "sum overflow":
        x[:], y[:] = 2.0**990, 2.0**31  # products 2^1021, in range; their sums are not
    x[3, 0] = 0.0
    same_as_mpfr(_matmul(4, 10, 3), {"X": x, "Y": y}, p, CHUNK)
    assert kernel_calls
    assert any(kernel_calls) == (case in ("huge operands", "huge product", "tiny product"))


@pytest.mark.parametrize("p", [26, 40, 53])
def test_linear_and_conv2d_with_bias_match_mpfr(p: int, kernel_calls) -> None:
    rng = np.random.default_rng(400 + p)
    lin = build("linear", {"n": 7, "d_in": 12, "d_out": 5})
    inputs = {"X": p_bit(rng, p, (7, 12), (-3, 3)), "weight": p_bit(rng, p, (5, 12), (-3, 3)),
              "bias": p_bit(rng, p, (5,), (-3, 3))}
    same_as_mpfr(lin, inputs, p, CHUNK)
    conv = build("conv2d", {"h": 5, "w": 4, "c": 3, "k": 2, "hk": 3, "wk": 3})
    inputs = {"X": p_bit(rng, p, (5, 4, 3), (-2, 2)), "K": p_bit(rng, p, (2, 3, 3, 3), (-2, 2)),
              "b": p_bit(rng, p, (2,), (-2, 2))}
    same_as_mpfr(conv, inputs, p, CHUNK)
    assert kernel_calls and not any(kernel_calls)


@pytest.mark.parametrize("p", [32, 53])
def test_one_thread_and_two_give_the_same_bits(p: int, kernel_calls) -> None:
    rng = np.random.default_rng(p)
    inputs = {"X": rng.normal(size=(64, 96)), "Y": rng.normal(size=(96, 80))}
    same_bits_on_one_and_all_threads(_matmul(64, 96, 80), inputs, p, None)
    assert kernel_calls
