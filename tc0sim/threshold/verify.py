"""Check a primitive's threshold circuit against tc0sim.fp (MPFR), bit for bit.

Exhaustive over every operand tuple when there are at most ``limit`` of them, else a seeded sample
that favours the hard cases: a term's negation or a neighbour of it (cancellation), exponents a few
positions apart (ties and sticky bits), exponents at both ends of the range (range errors), zeros.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np

from tc0sim.fp import Format, FpArithmeticError
from tc0sim.threshold import fp_circuits as F
from tc0sim.threshold.circuit import Circuit

__all__ = ["Verification", "verify", "sample"]


@dataclass(frozen=True)
class Verification:
    method: str
    cases: int
    mismatches: int
    first_mismatch: tuple | None = None

    def text(self) -> str:
        verdict = "all equal" if not self.mismatches else f"{self.mismatches} MISMATCHES, first {self.first_mismatch}"
        return f"{self.method}: {self.cases} cases against tc0sim.fp (MPFR): {verdict}"


def sample(rng: random.Random, p: int, k: int) -> list[tuple[int, int]]:
    """k operands as (m, e) pairs, biased towards cancellation, ties, zeros and range ends."""
    hi = 1 << p
    base = rng.choice([rng.randrange(-hi, hi), hi - 1 - rng.randrange(3), -hi + rng.randrange(2 * p)])
    out: list[tuple[int, int]] = []
    for _ in range(k):
        u = rng.random()
        if u < 0.08:
            out.append((0, 0))
        elif u < 0.35 and any(m for m, _ in out):
            m, e = rng.choice([t for t in out if t[0]])
            mm = -m + rng.choice([0, 0, 1, -1])
            out.append((mm if (hi >> 1) <= abs(mm) < hi else -m, e))
        else:
            spread = rng.choice([1, p + 2, 3 * p, hi])
            e = min(hi - 1, max(-hi, base + rng.randrange(-spread, spread + 1)))
            out.append((rng.randrange(hi >> 1, hi) * rng.choice([1, -1]), e))
    return out


def _expected(prim: str, fmt: Format, terms: list[tuple[int, int]]) -> list[int]:
    p = fmt.p
    xs = [fmt.from_pair(m, e) for m, e in terms]
    if prim == "compare":
        return [int(xs[0] < xs[1])]
    try:
        r = fmt.sum(xs) if prim == "sum" else fmt.prod(xs) if prim == "prod" else getattr(fmt, prim)(*xs)
    except FpArithmeticError:
        return []
    m, e = fmt.to_pair(r)
    return F.encode(m, e, p) + [0]


def verify(prim: str, p: int, k: int, circuit: Circuit, limit: int = 300_000,
           samples: int = 2000, seed: int = 0) -> Verification:
    """Simulate the circuit on the cases and compare with tc0sim.fp; a range error must set the last bit."""
    fmt = Format(p)
    arity = k if prim in F.REDUCTIONS else F.ARITY.get(prim, 2)
    count = 1 + (1 << (2 * p + 1))
    """|F_p|: zero, and 2^(p−1) significands × 2 signs × 2^(p+1) exponents."""
    if count ** arity <= limit:
        cases = [list(t) for t in itertools.product(F.values(p), repeat=arity)]
        method = f"exhaustive over all {len(cases)} operand tuples"
    elif prim == "exp":
        rng = random.Random(seed)
        hi = 1 << p
        cases = [[(rng.randrange(hi // 2, hi) * rng.choice([1, -1]), rng.randrange(max(-hi, -3 * p - 8), 3))]
                 for _ in range(samples)]
        method = f"seeded sample (seed {seed}) with exponents where e^x is neither 1 nor out of range, and beyond"
    else:
        rng = random.Random(seed)
        cases = [sample(rng, p, arity) for _ in range(samples)]
        method = f"seeded sample (seed {seed}) biased to cancellation, ties and range ends"
    bits = np.array([[b for m, e in t for b in F.encode(m, e, p)] for t in cases], dtype=np.uint8)
    out = circuit.simulate(bits).astype(int)
    bad, first = 0, None
    for t, o in zip(cases, out):
        want = _expected(prim, fmt, t)
        ok = bool(o[-1]) if not want else list(o) == want
        if not ok:
            bad += 1
            first = first or (tuple(t), tuple(o))
    return Verification(method, len(cases), bad, first)
