"""The verdict of a depth claim against computed critical vectors: tight, slack or violated (docs/claims.md).

A claim is a depth vector; it bounds the depth for every non-negative value of the symbols exactly
when every Pareto-maximal critical vector is ≤ it componentwise (``tc0sim.ir.vectors.leq``).
"""

from __future__ import annotations

from collections.abc import Iterable

from tc0sim.ir.vectors import Vec, leq, sub


def claim_verdict(critical: Iterable[Vec], claim: Vec) -> tuple[str, Vec | None]:
    """``tight`` (every critical vector ≤ claim, one equal), ``slack`` (all ≤, none equal; with the
    smallest slack claim − v), or ``violated`` (with the first critical vector not ≤ the claim)."""
    vectors = list(critical)
    bad = [v for v in vectors if not leq(v, claim)]
    if bad:
        return "violated", bad[0]
    if claim in vectors:
        return "tight", None
    return "slack", min((sub(claim, v) for v in vectors), key=lambda s: (sum(s), s))
