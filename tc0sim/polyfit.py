"""Exact polynomial fitting over the rationals, for gate counts as a polynomial in n (docs/dag.md).

Newton's divided differences on the given points give the unique polynomial of degree ≤ k−1 through
k points. ``fit_and_verify`` is the one routine every report uses: the lowest-degree polynomial
through the first points that predicts every further point, so a fit is never taken on trust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import gcd


def fit(xs: Sequence[int], ys: Sequence[int]) -> list[Fraction]:
    """Coefficients (lowest degree first, trailing zeros removed; [0] for the zero polynomial)."""
    if len(xs) != len(ys) or not xs:
        raise ValueError("fit needs as many values as points, and at least one point")
    if len(set(xs)) != len(xs):
        raise ValueError(f"points must be distinct, got {list(xs)}")
    table = [Fraction(y) for y in ys]
    newton = [table[0]]
    for level in range(1, len(xs)):
        table = [(table[i + 1] - table[i]) / (xs[i + level] - xs[i]) for i in range(len(table) - 1)]
        newton.append(table[0])
    coefficients = [Fraction(0)]
    for k in range(len(newton) - 1, -1, -1):
        shifted = [Fraction(0)] + coefficients
        for i, c in enumerate(coefficients):
            shifted[i] -= c * xs[k]
        shifted[0] += newton[k]
        coefficients = shifted
    while len(coefficients) > 1 and coefficients[-1] == 0:
        coefficients.pop()
    return coefficients


@dataclass(frozen=True)
class Fit:
    """A polynomial fitted on ``fitted_on`` and checked on ``checked_on`` (the other points).

    ``failures`` are the checked points it does not predict; empty means the fit is verified.
    """

    coefficients: list[Fraction]
    fitted_on: list[int]
    checked_on: list[int]
    failures: list[int]

    @property
    def verified(self) -> bool:
        return not self.failures

    @property
    def degree(self) -> int:
        return degree(self.coefficients)


def fit_and_verify(points: Mapping[int, int], verify: int) -> Fit:
    """The lowest-degree polynomial through the smallest points that predicts all the others.

    Degrees 0, 1, … are tried, each fitted on the smallest ``degree + 1`` points and checked on
    the rest, keeping at least ``verify`` points to check; the first that predicts every point is
    returned (verified). When none does, the last try is returned with its ``failures``: the
    interpolation of all but the ``verify`` largest points, checked on those.
    """
    xs = sorted(points)
    if len(xs) <= verify or not xs:
        raise ValueError(f"fit_and_verify needs more than {verify} points, got {len(xs)}")
    for d in range(len(xs) - verify):
        basis, rest = xs[: d + 1], xs[d + 1 :]
        coefficients = fit(basis, [points[x] for x in basis])
        failures = [x for x in rest if value(coefficients, x) != points[x]]
        if not failures:
            break
    return Fit(coefficients, basis, rest, failures)


def value(coefficients: Sequence[Fraction], x: int) -> Fraction:
    """The polynomial at x (Horner)."""
    total = Fraction(0)
    for c in reversed(coefficients):
        total = total * x + c
    return total


def degree(coefficients: Sequence[Fraction]) -> int:
    """Index of the highest non-zero coefficient (0 for a constant, including 0)."""
    nonzero = [i for i, c in enumerate(coefficients) if c != 0]
    return nonzero[-1] if nonzero else 0


def verification_points(xs: Sequence[int], count: int) -> list[int]:
    """``count`` points beyond max(xs), spaced by the gcd of the gaps between the given points.

    With n = 4, 8, 16, 32 they are 36, 40: the residue of n modulo the spacing is kept, so dims such
    as n//4 stay in the class the fit was made on.
    """
    step = 0
    for x in xs:
        step = gcd(step, x - xs[0])
    step = step or 1
    top = max(xs)
    return [top + step * (i + 1) for i in range(count)]


def text(coefficients: Sequence[Fraction], var: str = "n") -> str:
    """'n^3 + n^2', '3/2 n^2 - n + 4', '0'."""
    terms: list[tuple[str, str]] = []
    for power in range(len(coefficients) - 1, -1, -1):
        c = coefficients[power]
        if c == 0:
            continue
        sign = "-" if c < 0 else "+"
        magnitude = abs(c)
        monomial = "" if power == 0 else (var if power == 1 else f"{var}^{power}")
        if not monomial:
            body = str(magnitude)
        elif magnitude == 1:
            body = monomial
        else:
            body = f"{magnitude} {monomial}"
        terms.append((sign, body))
    if not terms:
        return "0"
    first_sign, first = terms[0]
    out = ("-" if first_sign == "-" else "") + first
    for sign, body in terms[1:]:
        out += f" {sign} {body}"
    return out
