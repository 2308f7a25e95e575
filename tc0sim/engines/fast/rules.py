"""The fast engine's facts per primitive: one ``RuleTable`` (``FAST_RULES``) of ``FastRule`` records.

Wiring that only moves elements and the ``constant`` source get their rule from their row; a
compute primitive gets one by a family constructor (``fast_map``, ``fast_reduction``) whose
family follows the row's properties ('exact' or 'rounded', role 'reduction'). A primitive without
an entry (log, sin, cos; a scratch row) is evaluated by the reference engine's rule: the coverage
test (tests/test_engines_fast.py) lists every primitive against this table.

Ranges: bounds on a node's values, propagated by interval arithmetic with a factor 2 for every
rounding, so that most nodes need no pass over their operands (docs/semantics.md §2.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tc0sim.fastfp import Kernels
from tc0sim.ir import moves
from tc0sim.ir import primitives as P
from tc0sim.ir.primitives import Primitive
from tc0sim.ir.rules import RuleTable

Range = tuple[float, float, bool, bool]
"""Bounds on a node's values: (lower bound on the non-zero |x|, upper bound on |x|, may hold a
zero, may hold a negative number)."""

UNKNOWN: Range = (0.0, math.inf, True, True)

RangeRule = Callable[[list[Range], int, int], Range]
"""Bounds of a node's values from its operands' bounds, p and the fan-in k of a reduction."""

SafeRule = Callable[[Kernels, list[Range]], bool]
"""Whether interval analysis proves every result of the primitive in range (no per-element check)."""

EXACT, ROUNDED, CERTIFIED = "exact", "rounded", "certified"
"""Families of elementwise rules: the result is an operand (or 0/1), exact on F_p values; the
binary64 operation is correctly rounded, then rounded once more to p bits (innocuous double
rounding); the numpy function has a bounded relative error, certified per element."""

SUM, PROD = "sum", "prod"
"""Families of reductions: ⊕ (binary64 sum certified against its error bound), ⊗ (binary64
product of mantissas, exponents summed apart)."""

MOVE, CONSTANT = "move", "constant"

MAPS = frozenset({EXACT, ROUNDED, CERTIFIED})
REDUCTIONS = frozenset({SUM, PROD})

ZERO_FILLING = moves.CREATING
"""Move rules that put zeros among the moved elements (their range may hold a zero)."""


@dataclass(frozen=True)
class FastRule:
    """What the fast engine knows of one primitive: its family, the numpy function (``fn``; its
    binary32 version ``single``, certified for operands in fastfp.EXP_SINGLE_ARGUMENTS), where
    an exact zero result is right (``exact_zero``: a zero is never 'in range' for
    Kernels.in_range), its range rule, its interval proof of range (``safe``), and whether it is
    a product a·b (round_p(x·x) >= 0; Cauchy–Schwarz bounds Σ|a·b| when it feeds a ⊕)."""

    family: str
    kernel: str | None = None
    """The tc0sim.fp kernel of the row (MPFR recomputes uncertified elements with it)."""
    fn: Callable[..., np.ndarray] | None = None
    single: Callable[..., np.ndarray] | None = None
    exact_zero: Callable[..., np.ndarray] | None = None
    range: RangeRule | None = None
    safe: SafeRule | None = None
    product: bool = False


def union(ranges: list[Range]) -> Range:
    """Bounds holding every operand's values."""
    return (min(r[0] for r in ranges), max(r[1] for r in ranges), any(r[2] for r in ranges), any(r[3] for r in ranges))


def range_of(rule: FastRule, ranges: list[Range], p: int, k: int) -> Range:
    """``rule``'s range on the operands' bounds (UNKNOWN where the arithmetic fails)."""
    assert rule.range is not None
    try:
        return rule.range(ranges, p, k)
    except (OverflowError, ZeroDivisionError, ValueError):
        return UNKNOWN


def _exp_range(r: list[Range], p: int, k: int) -> Range:
    top = r[0][1]
    return (math.exp(-top) / 2 if top < 700 else 0.0, math.exp(top) * 2 if top < 700 else math.inf, False, False)


def _erf(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """binary64 erf (the C library's, through numba: loaded on first use), certified like exp."""
    from tc0sim.engines.fast.jit_erf import erf

    return erf(x, out=out)


def _erf_range(r: list[Range], p: int, k: int) -> Range:
    """|erf(x)| <= 1, and >= erf(1)·min(|x|, 1) > 0.84·min(|x|, 1) (erf is odd, increasing, concave for x > 0)."""
    return (0.4 * min(r[0][0], 1.0), 1.0, r[0][2], r[0][3])


def _within(K: Kernels, lo: float, hi: float) -> bool:
    return K.magnitudes_safe(lo, hi) if math.isfinite(hi) else False


def _safe_add(K: Kernels, r: list[Range]) -> bool:
    (la, ha, _, _), (lb, hb, _, _) = r
    return _within(K, min(la, lb) * 2.0 ** -(K.p), ha + hb)


def _safe_mul(K: Kernels, r: list[Range]) -> bool:
    (la, ha, _, _), (lb, hb, _, _) = r
    return _within(K, la * lb, ha * hb)


def _safe_div(K: Kernels, r: list[Range]) -> bool:
    (la, ha, _, _), (lb, hb, zb, _) = r
    return False if zb else _within(K, la / hb, ha / lb)


def _safe_exp(K: Kernels, r: list[Range]) -> bool:
    top = r[0][1]
    return top < 700 and K.magnitudes_safe(math.exp(-top), math.exp(top))


def _moved(r: list[Range], p: int, k: int) -> Range:
    return union(r) if r else UNKNOWN


def _zero_filled(r: list[Range], p: int, k: int) -> Range:
    lo, hi, _, negative = _moved(r, p, k)
    return (lo, hi, True, negative)


def _derive(row: Primitive) -> FastRule | None:
    """Wiring that only moves elements moves float64 arrays (bounds: the operands' union)."""
    if row.role == "wiring" and row.kernel is None and row.move is not None:
        return FastRule(MOVE, range=_zero_filled if row.move in ZERO_FILLING else _moved)
    return None


FAST_RULES: RuleTable[FastRule] = RuleTable("fast", _derive)
"""The fast engine's rule per primitive (entries below; none: the reference engine's rule)."""


def fast_map(row: Primitive, fn: Callable[..., np.ndarray], certified: bool = False, **facts: object) -> FastRule:
    """An elementwise rule: family EXACT or ROUNDED from the row's property, CERTIFIED for a
    'rounded' primitive whose numpy function is not correctly rounded."""
    family = EXACT if "exact" in row.properties else CERTIFIED if certified else ROUNDED
    FAST_RULES[row] = FastRule(family, row.kernel, fn, **facts)  # type: ignore[arg-type]
    return FAST_RULES[row]


def fast_reduction(row: Primitive, family: str, range: RangeRule, **facts: object) -> FastRule:
    """A reduction rule (a row of role 'reduction', rounded once)."""
    assert row.role == "reduction" and "rounded" in row.properties, row.name
    FAST_RULES[row] = FastRule(family, row.kernel, range=range, **facts)  # type: ignore[arg-type]
    return FAST_RULES[row]


FAST_RULES[P.CONSTANT] = FastRule(CONSTANT)

fast_map(P.ADD, np.add, exact_zero=lambda a, b: a == -b, safe=_safe_add,
         range=lambda r, p, k: (min(r[0][0], r[1][0]) * 2.0 ** -(p + 1), 2 * (r[0][1] + r[1][1]), True, True))
fast_map(P.SUB, np.subtract, exact_zero=lambda a, b: a == b, safe=_safe_add,
         range=lambda r, p, k: (min(r[0][0], r[1][0]) * 2.0 ** -(p + 1), 2 * (r[0][1] + r[1][1]), True, True))
fast_map(P.MUL, np.multiply, exact_zero=lambda a, b: (a == 0) | (b == 0), safe=_safe_mul, product=True,
         range=lambda r, p, k: (r[0][0] * r[1][0] / 2, 2 * r[0][1] * r[1][1], r[0][2] or r[1][2], r[0][3] or r[1][3]))
fast_map(P.DIV, np.divide, exact_zero=lambda a, b: (a == 0) & (b != 0), safe=_safe_div,
         range=lambda r, p, k: (r[0][0] / r[1][1] / 2 if r[1][1] else 0.0, 2 * r[0][1] / r[1][0] if r[1][0] else math.inf,
                                r[0][2], r[0][3] or r[1][3]))
fast_map(P.SQRT, np.sqrt, exact_zero=lambda a: a == 0, safe=lambda K, r: not r[0][3],
         range=lambda r, p, k: (math.sqrt(r[0][0]) / 2, 2 * math.sqrt(r[0][1]), r[0][2], False))
fast_map(P.EXP, np.exp, certified=True, single=np.exp, exact_zero=lambda a: np.zeros(a.shape, dtype=bool),
         safe=_safe_exp, range=_exp_range)
fast_map(P.ERF, _erf, certified=True, exact_zero=lambda a: a == 0, range=_erf_range)
fast_map(P.MAX, np.maximum, range=lambda r, p, k: union(r))
fast_map(P.MIN, np.minimum, range=lambda r, p, k: union(r))
fast_map(P.RELU, lambda a: np.maximum(a, 0.0), range=lambda r, p, k: (r[0][0], r[0][1], True, False))
fast_map(P.NEG, np.negative, range=lambda r, p, k: (r[0][0], r[0][1], r[0][2], True))
fast_map(P.COMPARE, lambda a, b: (a < b).astype(np.float64), range=lambda r, p, k: (1.0, 1.0, True, False))
fast_reduction(P.SUM, SUM, safe=_safe_add,
               range=lambda r, p, k: (r[0][0] * 2.0 ** -(p + 1), 2 * k * r[0][1], True, r[0][3]))
fast_reduction(P.PROD, PROD,
               range=lambda r, p, k: (r[0][0] ** k / 2 if r[0][0] < math.inf else 0.0,
                                      2 * r[0][1] ** k if k < 1000 else math.inf, r[0][2], r[0][3]))
"""Range rules: a ⊕ of fan-in k of multiples of 2^L is a multiple of 2^L, hence its non-zero
values are >= lo·2^-p. The ⊕'s ``safe`` is that of a sum of two terms (its pair fast path)."""
