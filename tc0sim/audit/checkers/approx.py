"""The universal-approximation claims (Chen et al., arXiv:2502.06167): measured bounds on seeded instances.

A claim's ``measure`` names its measurement in ``tc0sim.audit.approx_checks.MEASURES``; on a ``var``
model file the measurements that read perturbation chains read the file's own (its weights, its
precision, and aattc). A bound holding on every instance is ``slack``, failing on one ``violated``;
a bound false as printed but holding under a stated corrected reading is ``violated as printed`` with
the corrected reading's verdict beside it. The claim's ``nature`` says what a measurement can decide
(:data:`NATURE_VERDICT`): an existence statement stays ``unchecked`` (the measurement is a note), a
bound its hypotheses guarantee by construction is ``by construction`` (a failure would be a bug).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tc0sim.audit.approx_checks import MEASURES, Check, file_reports
from tc0sim.audit.instances import DEFAULT_NS
from tc0sim.audit.record import Checker, Claim, Verdict, finish
from tc0sim.errors import ConfigError


def _existence(measured: Check) -> Check:
    """An existence statement: no measurement decides it; what was measured becomes a note."""
    note = f"an existence statement: what is measured is not the statement ({measured.verdict}: {measured.computed})"
    return Check("unchecked", measured.claimed, "—", [note, *measured.notes])


def _construction(measured: Check) -> Check:
    """A bound the hypotheses guarantee (the triangle inequality at the same point): a pass is by construction."""
    if measured.verdict != "slack":
        return measured
    note = ("guaranteed by construction (the triangle inequality on errors measured at the same point): the "
            "measurement can only find a bug in the measuring, and found none")
    return Check("by construction", measured.claimed, measured.computed, [note, *measured.notes])


NATURE_VERDICT: dict[str, Callable[[Check], Check]] = {
    "bound": lambda measured: measured,
    "existence": _existence,
    "construction": _construction,
}
"""A claim's ``nature`` → how its measurement becomes a verdict."""


def _verdict(claim: Claim, measured: Check, fixed: Sequence[str]) -> Verdict:
    check = NATURE_VERDICT[claim.nature](measured)
    verdict = Verdict(claim.id, check.verdict, check.claimed, check.computed, list(check.notes), claim=claim)
    verdict.corrected = check.corrected
    verdict.held_fixed = list(fixed)
    finish(claim, verdict)
    for h in verdict.hypotheses:
        h["status"] = check.statuses.get(h["text"], h["status"])
    return verdict


def own(claim: Claim, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None) -> Verdict:
    """The claim's measurement on the registry's seeded instances."""
    measure = MEASURES[claim.measure]
    return _verdict(claim, measure.own(), measure.fixed)


def on_file(claims: Sequence[Claim], spec: Any, ns: Sequence[int] | None = None, gates_p: int | None = None) -> list[Verdict]:
    """The claims' measurements on the perturbation chains of the model file's instance."""
    try:
        reports = file_reports(spec)
    except ConfigError as e:
        checks = {claim.id: Check("unchecked", "—", "—", [str(e)]) for claim in claims}
        fixed: list[str] = []
    else:
        checks = {claim.id: MEASURES[claim.measure].on_file(reports) for claim in claims}
        fixed = [f"the file's chain: {label}" for label, _ in reports]
    return [_verdict(claim, checks[claim.id], fixed) for claim in claims]


def _validate(claim: Claim) -> None:
    """The measure is known, and measures the model files the claim names."""
    if claim.measure not in MEASURES:
        raise ConfigError(f"unknown measure {claim.measure!r} (known: {', '.join(MEASURES)})")
    if any(name == "approx" for name in claim.files.values()) and MEASURES[claim.measure].on_file is None:
        raise ConfigError(f"measure {claim.measure!r} does not read a model file")


CHECKER = Checker(frozenset({"measure"}), own, on_file, _validate)
