"""Threshold circuits for the F_p primitives, in one fixed bit encoding.

An F_p value ⟨m, e⟩ (2^(p−1) ≤ |m| < 2^p or m = 0, −2^p ≤ e < 2^p) is 2p + 3 bits: the zero flag z,
the sign s, the bits of |m| from bit p−1 down to bit 0, then e as a (p+1)-bit two's-complement
number, most significant bit first; zero is z = 1 and every other bit 0.  Operands are concatenated.
Outputs: the rounded result in the same encoding, then one *error* bit, set when the non-zero
rounded result's exponent leaves [−2^p, 2^p) (overflow or underflow: both are errors of F_p), on a
division by zero (0/0 too) and on the square root of a negative number, where tc0sim.fp raises.
When the error bit is 1 the other outputs are unspecified.  ``compare`` outputs the single bit a < b.
Inputs that are not valid encodings give unspecified outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import mpmath

from tc0sim.threshold.builder import ONE, ZERO, Builder, Group, Term, counting, neg
from tc0sim.errors import Tc0simError
from tc0sim.threshold.circuit import Circuit, Stats

__all__ = ["PRIMS", "CircuitTooLarge", "NotCertified", "build", "count", "encode", "decode", "operand_bits", "values"]


class CircuitTooLarge(Tc0simError, ValueError):
    """The requested circuit is beyond the size tc0sim builds."""


class NotCertified(Tc0simError, ValueError):
    """The construction exists but has not been certified exact at this precision (exp above p = 12)."""


# --- the encoding ----------------------------------------------------------------------------


def operand_bits(p: int) -> int:
    return 2 * p + 3


def encode(m: int, e: int, p: int) -> list[int]:
    """The 2p+3 bits of ⟨m, e⟩ (zero: z = 1, all else 0)."""
    if m == 0:
        return [1] + [0] * (2 * p + 2)
    mag = abs(m)
    if not (1 << (p - 1)) <= mag < (1 << p) or not -(1 << p) <= e < (1 << p):
        raise ValueError(f"⟨{m}, {e}⟩ is not in F_{p}")
    return ([0, int(m < 0)] + [mag >> i & 1 for i in range(p - 1, -1, -1)]
            + [(e % (1 << (p + 1))) >> i & 1 for i in range(p, -1, -1)])


def decode(bits: Sequence[int], p: int) -> tuple[int, int]:
    """⟨m, e⟩ from 2p+3 bits; zero gives (0, 0)."""
    if bits[0]:
        return (0, 0)
    mag = 0
    for b in bits[2:2 + p]:
        mag = 2 * mag + int(b)
    e = 0
    for b in bits[2 + p:3 + 2 * p]:
        e = 2 * e + int(b)
    if e >= 1 << p:
        e -= 1 << (p + 1)
    return (-mag if bits[1] else mag, e)


def values(p: int) -> list[tuple[int, int]]:
    """Every element of F_p as a pair (zero once, as (0, 0))."""
    out = [(0, 0)]
    for e in range(-(1 << p), 1 << p):
        for mag in range(1 << (p - 1), 1 << p):
            out += [(mag, e), (-mag, e)]
    return out


@dataclass(frozen=True)
class Operand:
    """Literals of one encoded operand; ``mag`` and ``exp`` are LSB first."""

    z: int
    s: int
    mag: list[int]
    exp: list[int]

    def exp_terms(self, p: int, lits: Sequence[int] | None = None) -> list[Term]:
        """e as a linear form (two's complement: the top bit weighs −2^p)."""
        lits = self.exp if lits is None else lits
        return [(x, -(1 << p) if i == p else 1 << i) for i, x in enumerate(lits)]

    def key_terms(self, p: int) -> list[Term]:
        """K = e·2^p + |m| + 2^(2p)·[non-zero]: 0 for zero, increasing in |value| otherwise."""
        return ([(x, w << p) for x, w in self.exp_terms(p)] + [(x, 1 << i) for i, x in enumerate(self.mag)]
                + [(neg(self.z), 1 << (2 * p))])


def _operands(b: Builder, p: int, count: int) -> list[Operand]:
    ops = []
    for _ in range(count):
        bits = b.inputs(operand_bits(p))
        ops.append(Operand(z=bits[0], s=bits[1], mag=bits[2:2 + p][::-1], exp=bits[2 + p:][::-1]))
    return ops


def _negate(terms: Sequence[Term]) -> list[Term]:
    return [(x, -w) for x, w in terms]


def _finish(b: Builder, p: int, nonzero: int, sign: int, mant: Sequence[int],
            exp_groups: Sequence[Group], exp_const: int, errors: Sequence[int] = ()) -> list[int]:
    """Output literals: z, s, |m| MSB first, e MSB first (bits of the exponent form), error bit
    (range error, or any of the ``errors`` literals: division by zero, sqrt of a negative)."""
    flat = [t for g in exp_groups for t in g]
    exp_bits = b.bits_of_sum(exp_groups, p + 1, exp_const, enable=[nonzero])
    over = b.gate_if(flat, (1 << p) - exp_const, [nonzero])
    under = b.gate_if(_negate(flat), (1 << p) + 1 + exp_const, [nonzero])
    return [neg(nonzero), sign] + list(mant[::-1]) + exp_bits[::-1] + [b.or_([over, under, *errors])]


# --- the primitives --------------------------------------------------------------------------


def _less(b: Builder, p: int, x: Operand, y: Operand) -> int:
    """x < y (depth 2): sign cases, each one comparison of the keys K (one gate)."""
    kx, ky = x.key_terms(p), y.key_terms(p)
    both_pos = b.gate_if(ky + _negate(kx), 1, [neg(x.s), neg(y.s)])
    both_neg = b.gate_if(kx + _negate(ky), 1, [x.s, y.s])
    neg_pos = b.and_([x.s, neg(y.s)])
    return b.or_([both_pos, both_neg, neg_pos])


def _bits(x: Operand) -> list[int]:
    return [x.z, x.s] + x.mag[::-1] + x.exp[::-1]


def compare(p: int, arity: int = 2) -> Circuit:
    """a < b (depth 2)."""
    b = Builder()
    x, y = _operands(b, p, 2)
    return b.circuit([_less(b, p, x, y)])


def _select(p: int, larger: bool) -> Circuit:
    b = Builder()
    x, y = _operands(b, p, 2)
    less = _less(b, p, x, y)
    pick_y = less if larger else neg(less)
    return b.circuit(b.mux(pick_y, _bits(y), _bits(x)) + [ZERO])


def max_(p: int, arity: int = 2) -> Circuit:
    """max(a, b), exact (depth 4: compare, then a multiplexer); the range-error bit is 0."""
    return _select(p, True)


def min_(p: int, arity: int = 2) -> Circuit:
    """min(a, b), exact (depth 4)."""
    return _select(p, False)


def relu(p: int, arity: int = 1) -> Circuit:
    """max(a, 0), exact (depth 1): a negative operand becomes zero."""
    b = Builder()
    (x,) = _operands(b, p, 1)
    kept = [b.and_([bit, neg(x.s)]) for bit in x.mag[::-1] + x.exp[::-1]]
    return b.circuit([b.or_([x.z, x.s]), ZERO] + kept + [ZERO])


def negate(p: int, arity: int = 1) -> Circuit:
    """−a, exact (depth 1: the sign flips unless a is zero; wiring in the DAG, one gate here)."""
    b = Builder()
    (x,) = _operands(b, p, 1)
    return b.circuit([x.z, b.and_([neg(x.s), neg(x.z)])] + x.mag[::-1] + x.exp[::-1] + [ZERO])


def mul(p: int, arity: int = 2) -> Circuit:
    """round_p(a·b): exact product of the significands (depth 3), normalise and round (3), exponent."""
    b = Builder()
    x, y = _operands(b, p, 2)
    nonzero = b.and_([neg(x.z), neg(y.z)])
    partial = [[(b.and_([u, v]), 1 << (i + j))] for i, u in enumerate(x.mag) for j, v in enumerate(y.mag)]
    product = b.bits_of_sum(partial, 2 * p)
    mant, lead_groups, const, _ = b.normalize_round(product, p, nonzero=nonzero, min_lead=2 * p - 2)
    both = b.and_([x.s, y.s])
    sign = b.gate_if([(x.s, 1), (y.s, 1), (both, -2)], 1, [nonzero])
    groups = [[t] for t in x.exp_terms(p) + y.exp_terms(p)] + lead_groups
    return b.circuit(_finish(b, p, nonzero, sign, mant, groups, const))


ADD_GUARD = 3
"""Bits below the larger operand's significand in the add window; ≥ 3 keeps a sticky bit below the guard."""


def add(p: int, arity: int = 2, subtract: bool = False) -> Circuit:
    """round_p(a + b) (``subtract``: round_p(a − b), b's sign literal negated: zero's sign is unused).

    The operand of larger magnitude (one key comparison) sits at bits W..W+p−1 of an integer X
    (W = ADD_GUARD); the other is shifted down by the exponent difference δ (one-hot from two key
    gates), with bits that fall below bit 0 — or the whole operand when δ ≥ W + p — folded into a
    sticky bit, and subtracted when the signs differ (X is then floor of the exact value).  X ≥ 0.
    """
    b = Builder()
    x, y = _operands(b, p, 2)
    if subtract:
        y = Operand(z=y.z, s=neg(y.s), mag=y.mag, exp=y.exp)
    w_low = ADD_GUARD
    far = w_low + p
    a_big = b.gate(x.key_terms(p) + _negate(y.key_terms(p)), 0)
    diff = x.exp_terms(p) + _negate(y.exp_terms(p))
    same = [[x.s, y.s], [neg(x.s), neg(y.s)]]
    differ = [[x.s, neg(y.s)], [neg(x.s), y.s]]
    columns: dict[int, Group] = {}
    sticky: list[int] = []
    sticky_sub: Group = []
    big: list[Group] = [[] for _ in range(p)]
    for big_sel, large, small, form in ((a_big, x, y, diff), (neg(a_big), y, x, _negate(diff))):
        at_least = [b.gate(form, d) for d in range(far + 1)]
        for i, m in enumerate(large.mag):
            big[i].append((b.and_([big_sel, m]), 1 << (w_low + i)))
        for delta in range(far + 1):
            case = [big_sel, at_least[delta]] + ([neg(at_least[delta + 1])] if delta < far else [])
            low = [m for i, m in enumerate(small.mag) if delta == far or i + w_low - delta < 0]
            for signs, weight in [(s, 1) for s in same] + [(s, -1) for s in differ]:
                for i, m in enumerate(small.mag):
                    pos = i + w_low - delta
                    if delta < far and pos >= 0:
                        columns.setdefault(pos, []).append((b.and_(case + signs + [m]), weight << pos))
                if low:
                    lit = b.gate_if([(m, 1) for m in low], 1, case + signs)
                    sticky.append(lit)
                    if weight < 0:
                        sticky_sub.append((lit, -1))
    groups = big + list(columns.values()) + [sticky_sub]
    flat = [t for g in groups for t in g]
    nonzero = b.gate(flat, 1)
    width = p + w_low + 1
    xbits = b.bits_of_sum(groups, width)
    mant, lead_groups, const, _ = b.normalize_round(xbits, p, sticky=sticky, nonzero=nonzero)
    sign = b.gate_if([(b.and_([a_big, x.s]), 1), (b.and_([neg(a_big), y.s]), 1)], 1, [nonzero])
    e_big = [[(b.and_([a_big, u]), w), (b.and_([neg(a_big), v]), w)]
             for (u, w), (v, _) in zip(x.exp_terms(p), y.exp_terms(p))]
    exp_groups = e_big + lead_groups
    return b.circuit(_finish(b, p, nonzero, sign, mant, exp_groups, const - w_low))


def sum_gap(p: int, k: int) -> int:
    """W: exponent gaps larger than W separate clusters in ``sum`` (2p + ⌈log2 k⌉)."""
    return 2 * p + (k - 1).bit_length()


def sum_(p: int, arity: int = 2) -> Circuit:
    """round_p(exact sum of k terms), one rounding, in polynomial size (see docs/threshold.md).

    Terms are sorted by exponent (zeros first); a gap larger than W = 2p + ⌈log2 k⌉ between
    neighbours separates clusters.  Every gap is capped at W + 1, which maps each term to a
    compressed position c on a grid of (k−1)(W+1) + p bits; the compressed sum T has the same
    leading cluster as the exact sum and the same sign and zero-ness of everything below it, and
    those decide the rounding (a lower cluster is below 2^(c_bottom − p − 1)).  The exponent is
    recovered from the highest term r* with c_r* ≤ (leading position of |T|) + 1: e = L − (p−1)
    + carry + e_r* − c_r*.
    """
    k = arity
    if k < 1:
        raise ValueError(f"sum needs at least one term, got arity {k}")
    b = Builder()
    ops = _operands(b, p, k)
    gap = sum_gap(p, k)
    far = 1 << (p + 3)
    before = {}
    for l, x in enumerate(ops):
        for j, y in enumerate(ops):
            if l != j:
                form = ([(t, 2 * w) for t, w in y.exp_terms(p)] + [(t, -2 * w) for t, w in x.exp_terms(p)]
                        + [(x.z, far), (y.z, -far), (ONE, int(l < j))])
                before[l, j] = b.gate(form, 1)
    rank_at_least = [[ONE] + [b.gate([(before[l, j], 1) for l in range(k) if l != j], r) for r in range(1, k)]
                     + [ZERO] for j in range(k)]

    def slot(r: int, field: Callable[[Operand], int]) -> list[int]:
        return [b.and_([rank_at_least[j][r], neg(rank_at_least[j][r + 1]), field(ops[j])]) for j in range(k)]

    slot_nonzero = [b.gate([(x.z, -1) for x in ops], -r) for r in range(k)]
    slot_sign = [b.or_(slot(r, lambda x: x.s)) for r in range(k)]
    slot_mag = [[b.or_(slot(r, lambda x, i=i: x.mag[i])) for i in range(p)] for r in range(k)]
    slot_exp = [[slot(r, lambda x, i=i: x.exp[i]) for i in range(p + 1)] for r in range(k)]
    weight = [(1 << i) if i < p else -(1 << p) for i in range(p + 1)]
    exp_form = [[(a, weight[i]) for i in range(p + 1) for a in slot_exp[r][i]] for r in range(k)]
    capped = [[b.gate_if(exp_form[r + 1] + _negate(exp_form[r]), c, [slot_nonzero[r]])
               for c in range(1, gap + 2)] for r in range(k - 1)]
    gap_bits = (gap + 1).bit_length()
    capped_bin = [b.bits_of_sum([[(g, 1)] for g in capped[r]], gap_bits) for r in range(k - 1)]
    span = (k - 1) * (gap + 1)
    pos_bits = max(1, span.bit_length())
    position = [b.bits_of_sum([[(capped_bin[q][i], 1 << i)] for q in range(r) for i in range(gap_bits)], pos_bits)
                for r in range(k)]
    onehot = [b.decode(position[r], span + 1) for r in range(k)]
    width = span + p + (k - 1).bit_length() + 2
    rows: list[list[int]] = []
    for r in range(k):
        row = []
        for pos in range(width):
            terms = [(slot_sign[r], 1)]
            for i in range(p):
                q = pos - i
                if 0 <= q <= span:
                    terms.append((b.and_([onehot[r][q], slot_mag[r][i], neg(slot_sign[r])]), 1))
                    terms.append((b.and_([onehot[r][q], slot_mag[r][i], slot_sign[r]]), -1))
            row.append(b.gate(terms, 1))
        rows.append(row)
        rows.append([slot_sign[r]])
    total = b.add_rows(rows, 0, width)
    negative = total[-1]
    low = total[:-1]
    flips = [b.gate_if([(t, 1) for t in low[:j]], 1, [negative]) for j in range(len(low))]
    magnitude = [b.xor2(t, f) for t, f in zip(low, flips)]
    nonzero = b.or_(list(low))
    mant, exp_groups, const, _ = b.normalize_round(magnitude, p, nonzero=nonzero)
    reached = [b.or_([b.and_([onehot[r][q], b.or_(magnitude[max(q - 1, 0):])]) for q in range(span + 1)])
               for r in range(k)] + [ZERO]
    top = [b.and_([reached[r], neg(reached[r + 1])]) for r in range(k)]
    for i in range(p + 1):
        exp_groups.append([(b.and_([top[r], b.or_(slot_exp[r][i])]), weight[i]) for r in range(k)])
    exp_groups += [[(b.and_([capped[r][c], reached[r + 1]]), -1)] for r in range(k - 1) for c in range(gap + 1)]
    sign = b.and_([negative, nonzero])
    return b.circuit(_finish(b, p, nonzero, sign, mant, exp_groups, const))


# --- division and square root: digit recurrences with exact comparisons ------------------------

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
    x, y = _operands(b, p, 2)
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
    groups = [[t] for t in x.exp_terms(p) + _negate(y.exp_terms(p))] + [[(big, 1)]]
    return b.circuit(_finish(b, p, nonzero, sign, mant, groups, -p, errors=[y.z]))


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
    (x,) = _operands(b, p, 1)
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
    return b.circuit(_finish(b, p, nonzero, ZERO, mant, groups, -((p - 1) // 2), errors=[negative]))


# --- exp: fixed-point y = x·log2(e), a chain of table multiplications for 2^frac(y), one rounding ---

EXP_GUARD_BITS: dict[int, int] = {2: 4, 3: 6, 4: 5, 5: 6, 6: 8, 7: 11, 8: 12, 9: 11, 10: 11, 11: 13, 12: 15}
"""Guard bits g(p) of the exp circuit (fraction bits of y: W = p + g), the least g for which the
circuit equals correctly rounded exp on every input whose exponent is in [−(W + p) − 2, 2] (every
smaller g was tried and fails) — found and certified by exhaustive simulation
(benchmarks/exp_guard_bits.py); exp is built only for these p."""
EXP_FIRST_TABLE = 8
"""Bits of frac(y) looked up in the first table (2^8 entries); further tables take EXP_CHUNK bits."""
EXP_CHUNK = 4


def _fixed(value: mpmath.mpf, bits: int) -> int:
    """round(value·2^bits) as an integer (mpmath at 4·bits + 64 bits of working precision)."""
    with mpmath.workprec(4 * max(bits, 16) + 64):
        return int(mpmath.nint(mpmath.ldexp(value, bits)))


def exp(p: int, arity: int = 1, guard: int | None = None) -> Circuit:
    """round_p(e^x): y = x·log2(e) in fixed point, 2^frac(y) by table multiplications, round_p.

    W = p + g fraction bits (``EXP_GUARD_BITS``).  For x = ±m·2^e with e ∈ [−(W + p), 0],
    Y = Σ_k [bit k of m]·round(log2(e)·2^(e+k+W)) (one AND gate per exponent, bit and sign),
    S = ±Y in two's complement (``bits_of_sum``): k = S ≫ W, f = S mod 2^W.  2^(f/2^W): the top
    EXP_FIRST_TABLE bits of f select a table value (one-hot, one linear form), then each further
    EXP_CHUNK bits multiply it by a table value (the product's ANDs are copies of the previous
    bits' gates with the one-hot folded in, then ``bits_of_sum`` of the high bits), giving
    Z ≈ 2^(f/2^W)·2^F; normalise and round Z to p bits, exponent k − F + offset.  Smaller |x|
    (e < −(W + p)) gives Y = 0 and e^x rounds to 1 exactly (|x| < 2^−W ≤ 2^−(p+2)); e ≥ 1 always
    overflows or underflows (|x| ≥ 2^p) and sets the error bit, as do the range checks.
    """
    g = EXP_GUARD_BITS.get(p) if guard is None else guard
    if g is None:
        raise NotCertified(f"the exp circuit is certified (its guard bits found by exhaustive simulation) only for "
                           f"p = {min(EXP_GUARD_BITS)}..{max(EXP_GUARD_BITS)}, got p = {p}")
    b = Builder()
    (x,) = _operands(b, p, 1)
    w = p + g
    frac_z = w + 2
    lowest = -(w + p)
    log2e = 1 / mpmath.log(2)
    exp_lits = x.exp
    width = w + p + 2
    rows: dict[int, Group] = {}
    for e in range(max(lowest, -(1 << p)), 1):
        code = e % (1 << (p + 1))
        pattern = [lit if code >> i & 1 else neg(lit) for i, lit in enumerate(exp_lits)]
        for k, m in enumerate(x.mag):
            c = _fixed(log2e, e + k + w)
            if c:
                rows.setdefault(k, []).extend([(b.and_(pattern + [m, neg(x.s)]), c), (b.and_(pattern + [m, x.s]), -c)])
    s_bits = b.bits_of_sum(list(rows.values()), width)
    frac, whole = s_bits[:w], s_bits[w:]
    chunks = [(max(0, w - EXP_FIRST_TABLE), w)]
    while chunks[-1][0] > 0:
        top = chunks[-1][0]
        chunks.append((max(0, top - EXP_CHUNK), top))

    def onehot(lo: int, hi: int) -> list[int]:
        return b.decode(frac[lo:hi], 1 << (hi - lo))

    def table(lo: int, hi: int, v: int) -> int:
        return _fixed(mpmath.power(2, mpmath.ldexp(v << lo, -w)), frac_z)

    z_bits = frac_z + 2
    lo, hi = chunks[0]
    stage: list[Group] = [[(d, table(lo, hi, v)) for v, d in enumerate(onehot(lo, hi))]]
    offset = 0
    """Bit i of Z is bit offset + i of the sum of ``stage``."""
    for lo, hi in chunks[1:]:
        stage = [[(b.bits_of_sum(stage, offset + i + 1, enable=[d], first=offset + i)[0], table(lo, hi, v) << i)
                  for v, d in enumerate(onehot(lo, hi))] for i in range(z_bits)]
        offset = frac_z
    z = b.bits_of_sum(stage, offset + z_bits, first=offset)
    mant, lead_groups, const, _ = b.normalize_round(z, p, nonzero=ONE, min_lead=frac_z - 1)
    k_groups = [[(lit, -(1 << i) if i == len(whole) - 1 else 1 << i)] for i, lit in enumerate(whole)]
    big = b.gate_if(x.exp_terms(p), 1, [neg(x.z)])
    return b.circuit(_finish(b, p, ONE, ZERO, mant, k_groups + lead_groups, const - frac_z, errors=[big]))


def prod(p: int, arity: int = 2) -> Circuit:
    """round_p(exact product of k terms), one rounding: a balanced tree of exact significand
    products (AND gates and ``bits_of_sum``, 3 layers per level), then ``normalize_round`` of the
    k·p-bit product (leading position k(p−1) .. kp−1).  Depth 3·⌈log2 k⌉ + 4 for k ≥ 3 (6 at
    k = 2, as mul): constant in p, grows with k."""
    k = arity
    if k < 1:
        raise ValueError(f"prod needs at least one term, got arity {k}")
    b = Builder()
    ops = _operands(b, p, k)
    nonzero = b.and_([neg(x.z) for x in ops])
    factors = [list(x.mag) for x in ops]
    while len(factors) > 1:
        pairs = [(factors[i], factors[i + 1]) for i in range(0, len(factors) - 1, 2)]
        products = [b.bits_of_sum([[(b.and_([u, v]), 1 << (i + j))] for i, u in enumerate(left) for j, v in enumerate(right)],
                                  len(left) + len(right)) for left, right in pairs]
        factors = products + factors[2 * len(pairs):]
    mant, lead_groups, const, _ = b.normalize_round(factors[0], p, nonzero=nonzero, min_lead=k * (p - 1))
    sign = b.bits_of_sum([[(x.s, 1)] for x in ops], 1, enable=[nonzero])[0]
    groups = [[t] for x in ops for t in x.exp_terms(p)] + lead_groups
    return b.circuit(_finish(b, p, nonzero, sign, mant, groups, const))


MAX_PROD_BITS = 96
"""Largest k·p of a prod circuit ``build`` constructs (its last exact product is of two k·p/2-bit
numbers; k·p = 96 has about 10^7 wires)."""


def sub(p: int, arity: int = 2) -> Circuit:
    """round_p(a − b) (the add circuit with b's sign negated)."""
    return add(p, arity, subtract=True)


PRIMS: dict[str, Callable[..., Circuit]] = {
    "compare": compare, "add": add, "sub": sub, "mul": mul, "sum": sum_,
    "max": max_, "min": min_, "relu": relu, "neg": negate, "div": div, "sqrt": sqrt,
    "exp": exp, "prod": prod,
}
REDUCTIONS = ("sum", "prod")
"""The variadic primitives: their circuits take --arity operands."""
ARITY = {"relu": 1, "neg": 1, "sqrt": 1, "exp": 1}
"""Operands of the primitives that do not take two (sum takes its --arity)."""
NOT_CONSTANT = ("depth = f(p), not constant in p (docs/threshold.md has the table); a constant-depth route "
                "is Hesse–Allender–Barrington (Chinese remaindering), not built")
DEPTH_NOTES = {
    "div": f"{NOT_CONSTANT}: div depth = ⌈(p + 2)/3⌉ + 2",
    "sqrt": f"{NOT_CONSTANT}: sqrt depth = ⌈p/3⌉ + 2",
    "exp": f"{NOT_CONSTANT}: exp depth grows with its guard bits; built only for the p where they are certified",
    "prod": "depth = 3·⌈log2 k⌉ + 4 (k ≥ 3), constant in p but not in k; a constant-depth iterated product is "
            "Hesse–Allender–Barrington (Chinese remaindering), not built",
}
"""What ``tc0sim threshold`` says about the depth of the constructions whose depth grows with p."""


MAX_SUM_WIRES = 15_000_000
"""Largest estimated sum circuit ``build`` constructs (k = 32 at p = 12 has 1.2·10^7 wires)."""


def sum_wires_estimate(p: int, k: int) -> int:
    """Wires of the sum circuit, from the least-squares fit of docs/threshold.md (within ~15% for
    k ≤ 32; 1.3–1.8× too high at k = 64, 73)."""
    return int(27 * p * p * k * k + 2.33 * p * p * k ** 3) + 10_000


MAX_COUNT_WIRES = 160_000_000
"""Largest estimated sum circuit ``count`` runs the construction for.  The estimate is about 1.3×
(p = 8) to 1.8× (p = 11, 12) the true size at k = 64, 73 (k = 73 at p = 11: 7.1·10^7 wires
against an estimate of 1.3·10^8, counted in about two minutes at 3–8·10^5 wires a second)."""


def _check(prim: str, p: int, arity: int) -> None:
    if prim not in PRIMS:
        raise ValueError(f"no threshold construction for {prim!r}; expected one of {sorted(PRIMS)}")
    if p < 2:
        raise ValueError(f"precision must be at least 2, got {p}")
    if prim == "prod" and arity * p > MAX_PROD_BITS:
        raise CircuitTooLarge(f"the product of {arity} terms at p = {p} has {arity * p} bits, above the limit of "
                              f"{MAX_PROD_BITS} for prod circuits")


def build(prim: str, p: int, arity: int = 2) -> Circuit:
    _check(prim, p, arity)
    if prim == "sum" and sum_wires_estimate(p, arity) > MAX_SUM_WIRES:
        raise CircuitTooLarge(f"the sum of {arity} terms at p = {p} would have about "
                              f"{sum_wires_estimate(p, arity):.2g} wires, above the limit of {MAX_SUM_WIRES:.2g}")
    return PRIMS[prim](p, arity)


def count(prim: str, p: int, arity: int = 2, max_wires: float = MAX_COUNT_WIRES) -> Stats:
    """The Stats of ``build(prim, p, arity)`` without storing it: the same construction code run
    by counting-mode builders (``tc0sim.threshold.builder.counting``), for sums far beyond what
    ``build`` materialises (up to ``max_wires`` estimated wires)."""
    _check(prim, p, arity)
    if prim == "sum" and sum_wires_estimate(p, arity) > max_wires:
        raise CircuitTooLarge(f"counting the sum of {arity} terms at p = {p} would run through about "
                              f"{sum_wires_estimate(p, arity):.2g} wires, above the limit of {max_wires:.2g} "
                              f"(10^8 wires take a few minutes)")
    with counting():
        return PRIMS[prim](p, arity).stats()
