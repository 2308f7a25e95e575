"""Threshold circuits for the F_p primitives, in one fixed bit encoding.

An F_p value ⟨m, e⟩ (2^(p−1) ≤ |m| < 2^p or m = 0, −2^p ≤ e < 2^p) is 2p + 3 bits: the zero flag z,
the sign s, the bits of |m| from bit p−1 down to bit 0, then e as a (p+1)-bit two's-complement
number, most significant bit first; zero is z = 1 and every other bit 0.  Operands are concatenated.
Outputs: the rounded result in the same encoding, then one *error* bit, set when the non-zero
rounded result's exponent leaves [−2^p, 2^p) (overflow or underflow: both are errors of F_p), on a
division by zero (0/0 too) and on the square root of a negative number, where tc0sim.fp raises.
When the error bit is 1 the other outputs are unspecified.  ``compare`` outputs the single bit a < b.
Inputs that are not valid encodings give unspecified outputs.

The encoding and the errors are in ``fp_encoding``, division and square root in ``fp_digits``, exp in
``fp_exp``; this module has the other primitives, the table ``PRIMS`` and ``build``/``count``.
"""

from __future__ import annotations

from typing import Callable

from tc0sim.threshold.builder import ONE, ZERO, Builder, Group, counting, neg
from tc0sim.threshold.circuit import Circuit, Stats
from tc0sim.threshold.fp_digits import div, sqrt
from tc0sim.threshold.fp_encoding import (CircuitTooLarge, NotCertified, Operand, decode, encode, finish, negated,
                                          operand_bits, operands, values)
from tc0sim.threshold.fp_exp import exp

__all__ = ["PRIMS", "CircuitTooLarge", "NotCertified", "build", "count", "encode", "decode", "operand_bits", "values"]


# --- the primitives --------------------------------------------------------------------------


def _less(b: Builder, p: int, x: Operand, y: Operand) -> int:
    """x < y (depth 2): sign cases, each one comparison of the keys K (one gate)."""
    kx, ky = x.key_terms(p), y.key_terms(p)
    both_pos = b.gate_if(ky + negated(kx), 1, [neg(x.s), neg(y.s)])
    both_neg = b.gate_if(kx + negated(ky), 1, [x.s, y.s])
    neg_pos = b.and_([x.s, neg(y.s)])
    return b.or_([both_pos, both_neg, neg_pos])


def _bits(x: Operand) -> list[int]:
    return [x.z, x.s] + x.mag[::-1] + x.exp[::-1]


def compare(p: int, arity: int = 2) -> Circuit:
    """a < b (depth 2)."""
    b = Builder()
    x, y = operands(b, p, 2)
    return b.circuit([_less(b, p, x, y)])


def _select(p: int, larger: bool) -> Circuit:
    b = Builder()
    x, y = operands(b, p, 2)
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
    (x,) = operands(b, p, 1)
    kept = [b.and_([bit, neg(x.s)]) for bit in x.mag[::-1] + x.exp[::-1]]
    return b.circuit([b.or_([x.z, x.s]), ZERO] + kept + [ZERO])


def negate(p: int, arity: int = 1) -> Circuit:
    """−a, exact (depth 1: the sign flips unless a is zero; wiring in the DAG, one gate here)."""
    b = Builder()
    (x,) = operands(b, p, 1)
    return b.circuit([x.z, b.and_([neg(x.s), neg(x.z)])] + x.mag[::-1] + x.exp[::-1] + [ZERO])


def mul(p: int, arity: int = 2) -> Circuit:
    """round_p(a·b): exact product of the significands (depth 3), normalise and round (3), exponent."""
    b = Builder()
    x, y = operands(b, p, 2)
    nonzero = b.and_([neg(x.z), neg(y.z)])
    partial = [[(b.and_([u, v]), 1 << (i + j))] for i, u in enumerate(x.mag) for j, v in enumerate(y.mag)]
    product = b.bits_of_sum(partial, 2 * p)
    mant, lead_groups, const, _ = b.normalize_round(product, p, nonzero=nonzero, min_lead=2 * p - 2)
    both = b.and_([x.s, y.s])
    sign = b.gate_if([(x.s, 1), (y.s, 1), (both, -2)], 1, [nonzero])
    groups = [[t] for t in x.exp_terms(p) + y.exp_terms(p)] + lead_groups
    return b.circuit(finish(b, p, nonzero, sign, mant, groups, const))


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
    x, y = operands(b, p, 2)
    if subtract:
        y = Operand(z=y.z, s=neg(y.s), mag=y.mag, exp=y.exp)
    w_low = ADD_GUARD
    far = w_low + p
    a_big = b.gate(x.key_terms(p) + negated(y.key_terms(p)), 0)
    diff = x.exp_terms(p) + negated(y.exp_terms(p))
    same = [[x.s, y.s], [neg(x.s), neg(y.s)]]
    differ = [[x.s, neg(y.s)], [neg(x.s), y.s]]
    columns: dict[int, Group] = {}
    sticky: list[int] = []
    sticky_sub: Group = []
    big: list[Group] = [[] for _ in range(p)]
    for big_sel, large, small, form in ((a_big, x, y, diff), (neg(a_big), y, x, negated(diff))):
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
    return b.circuit(finish(b, p, nonzero, sign, mant, exp_groups, const - w_low))


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
    ops = operands(b, p, k)
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
    capped = [[b.gate_if(exp_form[r + 1] + negated(exp_form[r]), c, [slot_nonzero[r]])
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
    return b.circuit(finish(b, p, nonzero, sign, mant, exp_groups, const))


def prod(p: int, arity: int = 2) -> Circuit:
    """round_p(exact product of k terms), one rounding: a balanced tree of exact significand
    products (AND gates and ``bits_of_sum``, 3 layers per level), then ``normalize_round`` of the
    k·p-bit product (leading position k(p−1) .. kp−1).  Depth 3·⌈log2 k⌉ + 4 for k ≥ 3 (6 at
    k = 2, as mul): constant in p, grows with k."""
    k = arity
    if k < 1:
        raise ValueError(f"prod needs at least one term, got arity {k}")
    b = Builder()
    ops = operands(b, p, k)
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
    return b.circuit(finish(b, p, nonzero, sign, mant, groups, const))


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
