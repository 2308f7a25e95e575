"""Signed zeros: F_p has +0 and −0 as MPFR does, and the fast engine gives the MPFR engine's sign on
every path — inputs rounded on entry (proved-safe and unproved), products, negation, erf, exp,
sums — at p ∈ {8, 24, 40, 53}. (A −0 input once came out as +0 from the safe entry rounding,
(x + c) − c; the sign bit is now restored.)"""

from __future__ import annotations

import numpy as np
import pytest

from engine_compare import same_as_mpfr
from tc0sim.engines.fast import memory as fast_memory
from tc0sim.ir.graph import Builder


def _graph(n: int):
    b = Builder()
    x, w = b.input("x", (n,)), b.input("w", (n,))
    b.output("x_in", b.neg(b.neg(x)))
    b.output("product", b.mul(x, w))
    b.output("negated", b.neg(x))
    b.output("erf", b.erf(x))
    b.output("quotient", b.div(x, b.add(b.mul(w, w), b.mul(x, x))))
    b.output("total", b.sum(b.mul(b.reshape(x, (1, n)), b.reshape(w, (1, n))), axis=1))
    return b.graph


@pytest.mark.parametrize("p", [8, 24, 40, 53])
@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize("compiled", [False, True])
def test_signed_zeros_match_the_mpfr_engine(p: int, chunk: int | None, compiled: bool, monkeypatch) -> None:
    """``compiled``: the fused product-sum kernel for the ⊕ of 8 products at p <= 25 too."""
    monkeypatch.setattr(fast_memory, "JIT_COLD_ELEMENTS", 0 if compiled else 1 << 62)
    x = np.array([-0.0, 0.0, -1.5, 2.0, -0.0, 0.25, -0.0, 0.0])
    w = np.array([1.0, -1.0, -0.0, -0.0, -2.0, 0.5, 0.0, -0.0])
    same_as_mpfr(_graph(x.size), {"x": x, "w": w}, p, chunk)
    all_zero = np.array([-0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0])
    same_as_mpfr(_graph(x.size), {"x": all_zero, "w": np.ones(8)}, p, chunk)
