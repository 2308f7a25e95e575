"""The audit engine: each claim of the registry (tc0sim.audit.claims) audited by the checker its
``check`` names (tc0sim.audit.checkers.CHECKERS). One verdict per claim:

* ``tight`` — every Pareto-maximal critical vector is ≤ the claimed vector and one equals it
  (for an O(1) claim: the critical set is identical at every n of the sweep);
* ``slack`` — every critical vector is ≤ the claim and none equals it (the slack is reported);
  for a measured bound: it holds on every instance;
* ``by construction`` — a measured bound that the claim's own hypotheses guarantee (the triangle
  inequality at the same point): it held, and could only have failed through a bug;
* ``violated`` — some critical vector is not ≤ the claim (its witness path, by operator, is
  reported), or the O(1) depth changes along the sweep;
* ``violated as printed`` — the claim as printed fails on an instance, but holds under a stated
  corrected reading (the corrected reading and its verdict are reported beside it);
* ``precondition`` — an audited instance breaks a machine-checkable precondition (named);
* ``unchecked`` — nothing on a DAG to compare (the registry's reason, or too few instances).

The checkers: ``sweep`` (the claim's kind along an n sweep, exact size polynomial in n),
``runtime`` (FlowAR Lemmas 5.2, 5.5, 5.6 through the operation count of a proxy lowering),
``approx`` (the universal-approximation bounds, measured), ``release`` (a main theorem on a model
as released) and ``unchecked``. The reports are rendered by ``tc0sim.audit.render``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tc0sim.audit.checkers import CHECKERS
from tc0sim.audit.claims import CLAIMS, Claim, get
from tc0sim.audit.instances import DEFAULT_NS, MIN_SWEEP, VERIFY_POINTS, operation_count
from tc0sim.audit.record import Verdict, steps_total

VERDICTS = ("tight", "slack", "by construction", "violated", "violated as printed", "precondition", "unchecked")

FAILING = frozenset({"violated", "violated as printed"})
"""The verdicts that make ``tc0sim audit`` exit with status 1: it follows the claim as printed."""


def fails(verdicts: Iterable[Verdict]) -> bool:
    """Whether some verdict finds the claim false as printed (the audit's exit status 1)."""
    return any(v.verdict in FAILING for v in verdicts)


def audit_claim(claim: Claim, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None) -> Verdict:
    """Audit one claim at its own instances (the n sweep ``ns``) by the checker ``claim.check`` names."""
    return CHECKERS[claim.check].own(claim, ns, gates_p)


def audit_claims(
    ids: Iterable[str] | None = None, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None
) -> list[Verdict]:
    """Audit the registry's claims (all, or those with the given ids) over the n sweep ``ns``."""
    claims = CLAIMS if ids is None else tuple(get(i) for i in ids)
    return [audit_claim(claim, ns, gates_p) for claim in claims]


def audit_model(
    spec: Any, ns: Sequence[int] | None = None, claims: Iterable[Claim] | None = None,
    gates_p: int | None = None,
) -> list[Verdict]:
    """Audit the claims (default: the registry's) that name the model file's kind, on the file.

    ``spec`` is a ``tc0sim.modelfile.ModelSpec``. A claim names a kind by its own ``kind`` (audited
    by its ``check``) or under ``files`` (by the checker given there); each checker audits its
    claims at once (``Checker.on_file``, e.g. one n sweep of the file for all ``sweep`` claims),
    and the verdicts come grouped by checker in the order of ``CHECKERS``.
    """
    pool = CLAIMS if claims is None else tuple(claims)
    groups: dict[str, list[Claim]] = {name: [] for name in CHECKERS}
    for claim in pool:
        name = claim.on_files().get(spec.kind)
        if name is not None:
            groups[name].append(claim)
    return [v for name, group in groups.items() if group for v in CHECKERS[name].on_file(group, spec, ns, gates_p)]


__all__ = ["VERDICTS", "FAILING", "fails", "DEFAULT_NS", "MIN_SWEEP", "VERIFY_POINTS", "Verdict", "audit_claim", "audit_claims", "audit_model",
           "operation_count", "steps_total"]
