"""Division and square root as threshold circuits: digit recurrences with exact comparisons,
RADIX_BITS result bits per level, one rounding (docs/threshold.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from tc0sim.threshold.builder import ZERO, Builder, Term, neg
from tc0sim.threshold.circuit import Circuit
from tc0sim.threshold.fp_encoding import finish, negated, operands

RADIX_BITS = 3
"""Result bits decided per level of the div and sqrt digit recurrences (radix 2^3 = 8)."""


@dataclass(frozen=True)
class _Comparison:
    """A comparison gate [Σ terms ≥ threshold] kept with its linear form, so that an AND with a
    shallower literal can be built as a copy of the gate with that literal folded in (same depth)."""

    terms: tuple[Term, ...]
    threshold: int
    lit: int


def _comparison(b: Builder, terms: Sequence[Term], threshold: int) -> _Comparison:
    return _Comparison(tuple(terms), threshold, b.gate(terms, threshold))


def _digit_levels(nbits: int, h: int) -> list[tuple[int, int]]:
    """(lowest bit, width) of each level of an nbits-bit result, top level first; every level is
    h bits wide except possibly the top one."""
    return [(pos, min(h, nbits - pos)) for pos in reversed(range(0, nbits, h))]


def _thermometer(levels: Sequence[tuple[int, int]], digit: Callable[[int, int], int]) -> list[list[tuple[int, int]]]:
    """Coefficients turning thermometer comparisons into Σ_levels digit(v, pos): for the level
    digit v = Σ_j c_j (c_j = [v ≥ j]), any f(v) = f(0) + Σ_j (f(j) − f(j−1))·c_j.  Returns, per
    level, (j, coefficient of c_j) for the non-zero coefficients (f(0) = 0 for the uses here)."""
    return [[(j, digit(j, pos) - digit(j - 1, pos)) for j in range(1, 1 << width)
             if digit(j, pos) != digit(j - 1, pos)] for pos, width in levels]


def _rounded_half(shift: int) -> Callable[[int, int], int]:
    """The contribution of a digit v at bit pos to floor(F/2^shift) + bit (shift − 1) of F: the
    nearest integer to F/2^shift when F/2^shift is not a half-integer."""
    def digit(v: int, pos: int) -> int:
        field = v << pos
        return (field >> shift) + ((field >> (shift - 1)) & 1)
    return digit


def div(p: int, arity: int = 2) -> Circuit:
    """round_p(a / b) by a radix-2^h restoring division with exact comparisons (docs/threshold.md).

    F = floor(|m_a|·2^(p+1) / |m_b|) has p + 2 bits.  Level by level from the top, h bits of F are
    decided by the thermometer comparisons c_j = [A − P·B ≥ j·2^pos·B] (P the bits decided above,
    A = |m_a|·2^(p+1), B = |m_b|): one gate each, whose terms P·B are the products of earlier
    comparisons with the bits of B, each built as a copy of the earlier gate with that input bit
    folded in, so a level costs one gate layer.  No quotient of two F_p significands is a rounding
    midpoint, so round_p is F's top p bits plus the next bit: F ≫ 2 + bit 1 when |m_a| ≥ |m_b| (the
    top bit of F), else F ≫ 1 + bit 0 — a linear form of the comparisons, summed by
    ``bits_of_sum``.  Depth ⌈(p + 2)/h⌉ + 2.  Division by zero (0/0 too) sets the error bit.
    """
    b = Builder()
    x, y = operands(b, p, 2)
    nonzero = b.and_([neg(x.z), neg(y.z)])
    levels = _digit_levels(p + 2, RADIX_BITS)
    low_b = y.mag[:-1]
    """The divisor's bits below its leading one (which is 1 for every non-zero divisor)."""
    dividend = [(m, 1 << (k + p + 1)) for k, m in enumerate(x.mag)]
    with_bit: dict[tuple[int, int], int] = {}

    def times_divisor(c: _Comparison, weight: int) -> list[Term]:
        """weight·c·B, with c ∧ (bit k of B) as copies of c's gate."""
        out = [(c.lit, weight << (p - 1))]
        for k, m in enumerate(low_b):
            if (c.lit, k) not in with_bit:
                with_bit[c.lit, k] = b.gate_if(c.terms, c.threshold, [m])
            out.append((with_bit[c.lit, k], weight << k))
        return out

    digits: list[list[_Comparison]] = []
    for i, (pos, width) in enumerate(levels):
        decided = [t for (lpos, _), cs in zip(levels, digits) for c in cs for t in times_divisor(c, -(1 << lpos))]
        row = []
        for j in range(1, 1 << width):
            divisor = [(m, -(j << (pos + k))) for k, m in enumerate(low_b)]
            row.append(_comparison(b, dividend + decided + divisor, j << (pos + p - 1)))
        digits.append(row)
    half = 1 << (levels[0][1] - 1)
    big = digits[0][half - 1].lit
    """[F ≥ 2^(p+1)] = [|m_a| ≥ |m_b|]."""
    low, high = _thermometer(levels, _rounded_half(1)), _thermometer(levels, _rounded_half(2))
    terms: list[Term] = []
    for i, row in enumerate(digits):
        terms += [(row[j - 1].lit, w) for j, w in low[i]]
        shift = dict(high[i])
        for j, w in low[i]:
            shift[j] = shift.get(j, 0) - w
        for j, w in shift.items():
            if i == 0:
                terms.append((row[max(j, half) - 1].lit, w))
            else:
                terms.append((b.gate_if(row[j - 1].terms, row[j - 1].threshold, [big]), w))
    mant = b.bits_of_sum([[t] for t in terms], p, enable=[nonzero])
    both = b.and_([x.s, y.s])
    sign = b.gate_if([(x.s, 1), (y.s, 1), (both, -2)], 1, [nonzero])
    groups = [[t] for t in x.exp_terms(p) + negated(y.exp_terms(p))] + [[(big, 1)]]
    return b.circuit(finish(b, p, nonzero, sign, mant, groups, -p, errors=[y.z]))


def sqrt(p: int, arity: int = 1) -> Circuit:
    """round_p(√a) by a radix-2^h digit recurrence with exact comparisons (docs/threshold.md).

    With s ∈ {p − 1, p} of the parity of e, M = m·2^(s+2) ∈ [2^(2p), 2^(2p+2)) and √a = √M·2^((e−s)/2 − 1);
    F = floor(√M) ∈ [2^p, 2^(p+1)).  Below its leading one, h bits per level are decided by the
    thermometer comparisons c_j = [M ≥ (P + j·2^pos)²] (P the bits decided above), one gate each:
    (P + j·2^pos)² is linear in the earlier comparisons and in their pairwise ANDs — a square of
    one level's digit v is Σ_j (2j − 1)·c_j, an AND of comparisons of two levels is a copy of the
    later gate with the earlier one folded in — so a level costs one gate layer.  No square root
    of an F_p value is a rounding midpoint, so round_p = floor((F + 1)/2).  Depth ⌈p/h⌉ + 2; the
    error bit is set for a negative operand.
    """
    b = Builder()
    (x,) = operands(b, p, 1)
    nonzero = neg(x.z)
    odd_s = x.exp[0] if p % 2 else neg(x.exp[0])
    """[s = p]: s has the parity of e."""
    levels = _digit_levels(p, RADIX_BITS)
    doubled = [(m, 1 << (k + p + 1)) for k, m in enumerate(x.mag)]
    m_form = doubled + [(b.and_([odd_s, m]), w) for m, w in doubled]
    """M = m·2^(p+1)·(1 + [s = p]), for the levels below the first."""
    parts: list[list[list[int]]] = []
    """parts[level][j − 1]: exclusive literals whose sum is c_j (two at the first level, one per case)."""
    forms: list[list[_Comparison]] = []
    pair: dict[tuple[int, int], int] = {}

    def both(c: _Comparison, earlier: int) -> int:
        if (c.lit, earlier) not in pair:
            pair[c.lit, earlier] = b.gate_if(c.terms, c.threshold, [earlier])
        return pair[c.lit, earlier]

    for i, (pos, width) in enumerate(levels):
        row_parts, row_forms = [], []
        for j in range(1, 1 << width):
            const = (1 << (2 * p)) + (j << (pos + p + 1)) + (j * j << (2 * pos))
            if i == 0:
                cases = [([(m, w << 1) for m, w in doubled], odd_s), (doubled, neg(odd_s))]
                row_parts.append([b.gate_if(form, const, [case]) for form, case in cases])
                continue
            terms = list(m_form)
            for l, (lpos, _) in enumerate(levels[:i]):
                for jl, lits in enumerate(parts[l], start=1):
                    weight = (1 << (p + 1 + lpos)) + ((2 * jl - 1) << (2 * lpos)) + (j << (1 + pos + lpos))
                    terms += [(lit, -weight) for lit in lits]
                for l2 in range(l + 1, i):
                    weight = 1 << (1 + lpos + levels[l2][0])
                    terms += [(both(c2, lit), -weight) for c2 in forms[l2] for lits in parts[l] for lit in lits]
            c = _comparison(b, terms, const)
            row_forms.append(c)
            row_parts.append([c.lit])
        parts.append(row_parts)
        forms.append(row_forms)
    coefficients = _thermometer(levels, _rounded_half(1))
    terms = [(lit, w) for i, row in enumerate(coefficients) for j, w in row for lit in parts[i][j - 1]]
    mant = b.bits_of_sum([[t] for t in terms], p, const=1 << (p - 1), enable=[nonzero])
    half_e = [[(t, w // 2)] for t, w in x.exp_terms(p)[1:]]
    groups = half_e + [[(odd_s, (p - 1) // 2 - p // 2)]]
    negative = b.and_([x.s, nonzero])
    return b.circuit(finish(b, p, nonzero, ZERO, mant, groups, -((p - 1) // 2), errors=[negative]))
