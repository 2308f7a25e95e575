"""The primitives the torch front end added — log (d_log), sin and cos (d_trig) — are correctly
rounded at every precision (oracle: mpmath at increasing precision, tests/reference.py) and have
their own depth symbols in every table. (Module skipped without torch: only the front end uses them.)"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest

pytest.importorskip("torch")

import reference as R  # noqa: E402
from tc0sim.fp import DivisionByZero, Format, FpArithmeticError  # noqa: E402
from tc0sim.interp.depth import depth  # noqa: E402
from tc0sim.interp.size import size  # noqa: E402
from tc0sim.ir.graph import Builder  # noqa: E402
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS  # noqa: E402
from tc0sim.ir.vectors import vec  # noqa: E402

POINTS = [Fraction(1, 3), Fraction(7, 2), Fraction(10**6 + 1, 10**6), Fraction(3, 2**40), 1, 2, 355, -Fraction(113, 7)]
FUNCTIONS = {"log": mpmath.log, "sin": mpmath.sin, "cos": mpmath.cos}


@pytest.mark.parametrize("p", (8, 24, 53, 113))
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_kernel_is_correctly_rounded(name, p):
    F = Format(p)
    for x in POINTS:
        xp = R.round_fraction(Fraction(x), p)
        if name == "log" and xp <= 0:
            continue
        got = F.to_fraction(F.map(name, F.asarray([xp]))[0])
        assert got == R._mp_round(FUNCTIONS[name], name, xp, p), (name, p, x)


def test_log_of_zero_and_of_a_negative_number_are_errors():
    F = Format(24)
    with pytest.raises(DivisionByZero):
        F.map("log", F.asarray([0]))
    with pytest.raises(FpArithmeticError, match="log"):
        F.map("log", F.asarray([-1]))


def test_log_sin_cos_have_their_own_symbols():
    assert PRIMITIVES["log"].symbol == "d_log" and PRIMITIVES["sin"].symbol == PRIMITIVES["cos"].symbol == "d_trig"
    assert {"d_log", "d_trig"} <= set(SYMBOLS)
    b = Builder()
    x = b.input("x", (3,))
    b.output("out", b.add(b.sin(b.log(x)), b.cos(x)))
    assert depth(b.graph).critical == [vec(d_std=1, d_log=1, d_trig=1)]
    assert size(b.graph).by_primitive == {"log": 3, "sin": 3, "cos": 3, "add": 3}
