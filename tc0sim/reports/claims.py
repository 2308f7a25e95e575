"""``tc0sim claims``: the registry of the papers' claims (VAR arXiv:2501.04299, FlowAR arXiv:2502.16490,
universal approximation arXiv:2502.06167)."""

from __future__ import annotations

from tc0sim.reports.base import FixedReport, Section


class ClaimsReport(FixedReport):
    """The registry of claims: id, reference, claimed depth and size, kind audited."""


def claims_report() -> ClaimsReport:
    """The claims of the VAR, FlowAR and universal-approximation papers (``tc0sim.audit.claims``)."""
    from tc0sim.audit.claims import CLAIMS, claimed_depth

    rows = [
        [c.id, f"{c.paper} {c.ref}", c.title, claimed_depth(c) or "—", c.size or "—", c.kind or "—", c.unchecked and "unchecked" or ""]
        for c in CLAIMS
    ]
    section = Section(f"{len(CLAIMS)} claims", ("id", "reference", "title", "depth", "size", "kind", "status"), rows)
    return ClaimsReport([section], {"claims": [c.as_dict() for c in CLAIMS]})
