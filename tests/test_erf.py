"""The erf primitive: correctly rounded at every precision, its own depth symbol d_erf, in every table.

The oracle is tests/reference.erf_p: mpmath's erf at increasing precision, rounded to nearest-even
with exact rationals only when the rounding is certain."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import erf_p, round_fraction
from tc0sim.fp import Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.expand import expand
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import ERF, SYMBOLS

HARD = [0, 1, -1, Fraction(1, 2**40), -Fraction(3, 2**70), Fraction(7, 3), 5, -6, 27, Fraction(10**6 + 1, 10**6)]


@pytest.mark.parametrize("p", (8, 11, 24, 53, 113))
def test_erf_is_correctly_rounded_on_hard_cases(p):
    F = Format(p)
    for x in HARD:
        xp = round_fraction(Fraction(x), p)
        got = F.to_fraction(F.erf(F.round(xp)))
        assert got == erf_p(xp, p), (p, x)


@settings(max_examples=150, deadline=None)
@given(st.floats(-8, 8).filter(lambda v: v == 0 or abs(v) > 1e-6), st.sampled_from((5, 11, 24, 53, 64)))
def test_erf_array_path_equals_the_oracle(x, p):
    F = Format(p)
    arr = F.map("erf", F.asarray([x, -x]))
    xp = round_fraction(Fraction(x), p)
    assert [F.to_fraction(v) for v in arr] == [erf_p(xp, p), erf_p(-xp, p)]


def test_erf_is_a_primitive_with_its_own_symbol():
    prim = ERF
    assert prim.symbol == "d_erf" and "d_erf" in SYMBOLS and prim.arity == 1
    b = Builder()
    x = b.input("x", (3, 2))
    b.output("out", b.add(b.erf(x), x))
    g = b.graph
    crit = depth(g).critical
    expected = [0] * len(SYMBOLS)
    expected[SYMBOLS.index("d_erf")] = 1
    expected[SYMBOLS.index("d_std")] = 1
    assert crit == [tuple(expected)]
    assert size(g).by_primitive == {"erf": 6, "add": 6}
    scalar = expand(g)
    assert sum(1 for _, d in scalar.nodes(data=True) if d.get("prim") == "erf") == 6
    values = np.array([[0.5, -0.25], [3.0, 0.0], [-2.0, 1e-9]])
    out = evaluate(g, 53, {"x": values})["out"]
    F = Format(53)
    for (i, j), v in np.ndenumerate(values):
        xv = Fraction(v)
        assert F.to_fraction(out[i, j]) == round_fraction(erf_p(xv, 53) + xv, 53)
