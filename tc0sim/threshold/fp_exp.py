"""exp as a threshold circuit: fixed-point y = x·log2(e), a chain of table multiplications for
2^frac(y), one rounding; certified for the p of ``EXP_GUARD_BITS`` (docs/threshold.md)."""

from __future__ import annotations

import mpmath

from tc0sim.threshold.builder import ONE, ZERO, Builder, Group, neg
from tc0sim.threshold.circuit import Circuit
from tc0sim.threshold.fp_encoding import NotCertified, finish, operands

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
    (x,) = operands(b, p, 1)
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
    return b.circuit(finish(b, p, ONE, ZERO, mant, k_groups + lead_groups, const - frac_z, errors=[big]))
