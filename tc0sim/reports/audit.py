"""``tc0sim audit``: the verdicts of the papers' claims, on the registry's own instances or on model files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tc0sim.reports.base import Report, Section, as_spec

if TYPE_CHECKING:
    from tc0sim.audit.audit import Verdict
    from tc0sim.modelfile import ModelSpec

@dataclass
class AuditReport(Report):
    """Verdicts, and the kinds of the model files audited (empty for the registry's own audit)."""

    verdicts: list[Verdict]
    kinds: list[str] = field(default_factory=list)

    @property
    def violated(self) -> bool:
        """Whether a claim is violated as printed (the command's exit status 1; ``tc0sim.audit.audit.fails``)."""
        from tc0sim.audit.audit import fails

        return fails(self.verdicts)

    @property
    def empty_note(self) -> str | None:
        """Why nothing was audited: model files whose kinds no claim is about."""
        if self.verdicts or not self.kinds:
            return None
        return f"no claim of the registry is about kind {', '.join(self.kinds)}: nothing to audit"

    def summary(self) -> str:
        """One line of verdict counts, e.g. ``42 claims audited: 30 tight, 10 slack, 2 violated``."""
        counts: dict[str, int] = {}
        for v in self.verdicts:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        parts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"{len(self.verdicts)} claim{'s' if len(self.verdicts) != 1 else ''} audited: {parts or 'none'}"

    def render(self, fmt: str) -> str:
        """The verdicts as the audit's own rich table, markdown or JSON (``tc0sim.audit.render``)."""
        from tc0sim.audit.render import render

        return render(self.verdicts, fmt)

    def sections(self) -> list[Section]:
        rows = [[v.id, v.verdict, v.claimed, v.computed, "; ".join(v.notes)] for v in self.verdicts]
        return [Section("audit of the papers' claims", ("id", "verdict", "claimed", "computed", "notes"), rows)]

    def as_dict(self) -> dict[str, Any]:
        return {"claims": [v.as_dict() for v in self.verdicts]}


def audit_report(
    models: Sequence[str | Path | ModelSpec] = (), claims: Sequence[str] = (), gates_p: int | None = None
) -> AuditReport:
    """Audit the claims ``claims`` (default: all) of the registry at its instances, or, with model
    files, every claim about each file's kind at the file's dims; with ``gates_p`` each verdict
    also gives the depth with the threshold circuits at that precision."""
    from tc0sim.audit import audit as engine
    from tc0sim.audit.claims import get

    for claim_id in claims:
        get(claim_id)  # an unknown id is a ConfigError naming it, with or without model files
    if not models:
        return AuditReport(engine.audit_claims(list(claims) if claims else None, gates_p=gates_p))
    verdicts, kinds = [], []
    for model in models:
        spec, _ = as_spec(model)
        kinds.append(spec.kind)
        verdicts.extend(v for v in engine.audit_model(spec, gates_p=gates_p) if not claims or v.id in claims)
    return AuditReport(verdicts, sorted(set(kinds)))
