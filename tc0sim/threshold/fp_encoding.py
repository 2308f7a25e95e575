"""F_p values as bits for the threshold circuits (the encoding of ``tc0sim.threshold.fp_circuits``):
encode/decode, the literals of an operand, the output bits with the error bit, and the errors of
building a circuit.

An F_p value ⟨m, e⟩ is 2p + 3 bits: the zero flag z, the sign s, |m| from bit p−1 down to bit 0,
then e as a (p+1)-bit two's-complement number, most significant bit first; zero is z = 1 and every
other bit 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tc0sim.errors import Tc0simError
from tc0sim.threshold.builder import Builder, Group, Term, neg

class CircuitTooLarge(Tc0simError, ValueError):
    """The requested circuit is beyond the size tc0sim builds."""


class NotCertified(Tc0simError, ValueError):
    """The construction exists but has not been certified exact at this precision (exp above p = 12)."""


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


def operands(b: Builder, p: int, count: int) -> list[Operand]:
    ops = []
    for _ in range(count):
        bits = b.inputs(operand_bits(p))
        ops.append(Operand(z=bits[0], s=bits[1], mag=bits[2:2 + p][::-1], exp=bits[2 + p:][::-1]))
    return ops


def negated(terms: Sequence[Term]) -> list[Term]:
    return [(x, -w) for x, w in terms]


def finish(b: Builder, p: int, nonzero: int, sign: int, mant: Sequence[int],
            exp_groups: Sequence[Group], exp_const: int, errors: Sequence[int] = ()) -> list[int]:
    """Output literals: z, s, |m| MSB first, e MSB first (bits of the exponent form), error bit
    (range error, or any of the ``errors`` literals: division by zero, sqrt of a negative)."""
    flat = [t for g in exp_groups for t in g]
    exp_bits = b.bits_of_sum(exp_groups, p + 1, exp_const, enable=[nonzero])
    over = b.gate_if(flat, (1 << p) - exp_const, [nonzero])
    under = b.gate_if(negated(flat), (1 << p) + 1 + exp_const, [nonzero])
    return [neg(nonzero), sign] + list(mant[::-1]) + exp_bits[::-1] + [b.or_([over, under, *errors])]
