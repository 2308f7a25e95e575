"""A runtime claim n^{a+o(1)} against the operation count of a proxy lowering (FlowAR Lemmas 5.2, 5.5, 5.6).

The claim's kind is the proxy: built at its dims over the n sweep with the widths ``fixed`` says
are held, its operation count (every gate once, a ⊕/⊗ of fan-in k as k operations) is fitted as an
exact polynomial in n and its degree compared with the claimed exponent a. On a model file of the
proxy's kind the claim is audited on its own proxy sweep, not on the file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from tc0sim import polyfit
from tc0sim.audit.instances import DEFAULT_NS, claim_maker, divisors, operation_count, size_fit
from tc0sim.audit.record import Checker, Claim, Verdict, finish
from tc0sim.errors import Tc0simError
from tc0sim.ir.graph import Graph

SCOPE = "exponent at fixed d, c, g"
"""What a runtime verdict is about: the operation count's exponent in n with the widths and degree held."""

_RUNTIME_EXPONENT = re.compile(r"n\^\{?\s*(\d+)\s*(\+\s*o\(1\))?\s*\}?")


def _runtime_exponent(runtime: str) -> int | None:
    match = _RUNTIME_EXPONENT.search(runtime)
    return int(match.group(1)) if match else None


def own(claim: Claim, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None) -> Verdict:
    """A runtime claim n^{a+o(1)} against the operation count of its proxy lowering (fixed widths)."""
    kind, dims, fixed = claim.kind, claim.dims, claim.fixed
    verdict = Verdict(claim.id, "unchecked", f"runtime {claim.runtime}", "—", claim=claim)
    exponent = _runtime_exponent(claim.runtime)
    verdict.notes.append("runtime claim")
    try:
        make = claim_maker(kind, dims)
    except Tc0simError as error:
        verdict.notes.append(f"proxy kind {kind!r} is not available: {error}")
        return finish(claim, verdict)
    built: dict[int, Graph] = {}
    skipped: list[str] = []
    for n in ns:
        try:
            built[n] = make(n)[1]
        except Tc0simError as error:
            skipped.append(f"n={n}: {error}")
    if skipped:
        verdict.notes.append("proxy instances that do not build were skipped: " + "; ".join(skipped))
    if not built:
        verdict.notes.append("no proxy instance could be built")
        return finish(claim, verdict)
    verdict.ns = sorted(built)
    coefficients, verified, points = size_fit(make, built, divisors(dims.values()), operation_count)
    if coefficients is None or exponent is None:
        verdict.notes.append(
            f"proxy {kind}: operation count not a polynomial in n on n = {', '.join(map(str, sorted(points)))}"
            if coefficients is None
            else f"no exponent n^a found in {claim.runtime!r}"
        )
        return finish(claim, verdict)
    degree = len(coefficients) - 1
    verdict.computed = f"Θ({polyfit.text([Fraction(0)] * degree + [Fraction(1)])}) operations"
    verdict.size_polynomial = polyfit.text(coefficients)
    verdict.notes.append(
        f"proxy: {kind} with dims {', '.join(f'{k}={v}' for k, v in dims.items())} ({fixed}); its operation "
        f"count (each gate once, a ⊕ of fan-in k as k operations) is {verdict.size_polynomial}, degree "
        f"{degree}, verified at n = {', '.join(map(str, verified))}"
    )
    verdict.scope = SCOPE
    verdict.notes.append(
        "checkable: the polynomial exponent at fixed widths; not checkable: the o(1) term, c = O(log n) "
        "(a fixed c only bounds it), the cost of one F_p operation (poly(p)), and the approximation error "
        "(a fixed-degree AAttC does not reach delta = 1/poly(n))"
    )
    if degree > exponent:
        verdict.verdict = "violated"
        verdict.notes.append(
            f"the operation count grows as n^{degree}, above the claimed n^({exponent}+o(1)): an o(1) term "
            "cannot absorb a whole power of n"
        )
    else:
        verdict.verdict = "tight" if degree == exponent else "slack"
        if degree < exponent:
            verdict.notes.append(f"the operation count grows as n^{degree}, below the claimed n^({exponent}+o(1))")
    return finish(claim, verdict)


def on_file(claims: Sequence[Claim], spec: Any, ns: Sequence[int] | None = None, gates_p: int | None = None) -> list[Verdict]:
    """On a file of the proxy's kind: each claim on its own proxy sweep (``ns``, default DEFAULT_NS)."""
    return [own(claim, tuple(ns) if ns is not None else DEFAULT_NS) for claim in claims]


CHECKER = Checker(frozenset({"kind", "runtime"}), own, on_file)
