"""The universal-approximation claims (Chen et al., arXiv:2502.06167): measured bounds on seeded instances.

A claim's ``measure`` names its measurement in ``tc0sim.audit.approx_checks.MEASURES``; on a ``var``
model file the measurements that read perturbation chains read the file's own (its weights, its
precision, and aattc). A bound holding on every instance is ``slack``, failing on one ``violated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tc0sim.audit.approx_checks import MEASURES, file_reports
from tc0sim.audit.instances import DEFAULT_NS
from tc0sim.audit.record import Checker, Claim, Verdict, finish
from tc0sim.errors import ConfigError


def own(claim: Claim, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None) -> Verdict:
    """The claim's measurement on the registry's seeded instances."""
    verdict_name, claimed, computed, notes = MEASURES[claim.measure].own()
    return finish(claim, Verdict(claim.id, verdict_name, claimed, computed, notes, claim=claim))


def on_file(claims: Sequence[Claim], spec: Any, ns: Sequence[int] | None = None, gates_p: int | None = None) -> list[Verdict]:
    """The claims' measurements on the perturbation chains of the model file's instance."""
    try:
        reports = file_reports(spec)
    except ConfigError as e:
        checks = {claim.id: ("unchecked", "—", "—", [str(e)]) for claim in claims}
    else:
        checks = {claim.id: MEASURES[claim.measure].on_file(reports) for claim in claims}
    return [finish(claim, Verdict(claim.id, *checks[claim.id], claim=claim)) for claim in claims]


def _validate(claim: Claim) -> None:
    """The measure is known, and measures the model files the claim names."""
    if claim.measure not in MEASURES:
        raise ConfigError(f"unknown measure {claim.measure!r} (known: {', '.join(MEASURES)})")
    if any(name == "approx" for name in claim.files.values()) and MEASURES[claim.measure].on_file is None:
        raise ConfigError(f"measure {claim.measure!r} does not read a model file")


CHECKER = Checker(frozenset({"measure"}), own, on_file, _validate)
