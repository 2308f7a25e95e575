"""``tc0sim demo``: one-rounding iterated addition (VAR Lemma 3.5 Part 3) against left-to-right addition."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import gmpy2

from tc0sim.fp import Format
from tc0sim.reports.base import FixedReport, Section

DEMO_PRECISIONS = (8, 24, 53, 113)
DEMO_TERMS = ("1e40", "1", "-1e40", "1/3")


class DemoReport(FixedReport):
    """One table: at each p, the left-to-right sum, the one-rounding sum and the exact sum."""


def _text(x: object, digits: int) -> str:
    return format(x, f".{digits}g")


def demo_report(terms: Sequence[str] = DEMO_TERMS, precisions: Sequence[int] = DEMO_PRECISIONS) -> DemoReport:
    """Sum ``terms`` (each rounded to p bits first) at each p: left to right, once with F.sum, exactly."""
    section = Section(
        "sum of " + ", ".join(terms) + " (terms rounded to p bits on entry)",
        ("p", "left-to-right add", "one rounding F.sum", "exact sum of the rounded terms", "differ"),
    )
    rows = []
    for p in precisions:
        fmt = Format(p)
        rounded = [fmt.round(t) for t in terms]
        acc = fmt.zero
        for t in rounded:
            acc = fmt.add(acc, t)
        once = fmt.sum(rounded)
        exact = sum((fmt.to_fraction(t) for t in rounded), Fraction(0))
        digits = max(3, int(p * 0.30103) + 2)
        exact_text = _text(gmpy2.mpfr(gmpy2.mpq(exact.numerator, exact.denominator), 4 * p), digits + 4)
        section.rows.append([str(p), _text(acc, digits), _text(once, digits), exact_text, "yes" if acc != once else "no"])
        rows.append({"p": p, "left_to_right": str(acc), "one_rounding": str(once), "exact": str(exact), "differ": acc != once})
    return DemoReport([section], {"terms": list(terms), "rows": rows})
