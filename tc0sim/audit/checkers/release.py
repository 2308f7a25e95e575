"""A main theorem on a model as released: its preconditions and exact depth on one fixed configuration.

VAR Theorem 5.11 on a ``var_release`` file (tc0sim.audit.var_release) and FlowAR Theorem 4.9 on a
``flowar_release`` file (tc0sim.audit.flowar_release). A single fixed circuit can neither satisfy
nor fail an asymptotic hypothesis: each concrete precondition is evaluated under every reading of n
(tokens, pixels, side); the verdict is ``precondition`` when no reading satisfies them together, else
``unchecked`` ("fixed configuration: asymptotic hypotheses are not decidable"), with the depth's
growth along the official scale lists, the primitives and structures outside the paper's, and the
closed-form depth in the scales and layers. Only on model files (a claim names the release kind in
``files``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tc0sim.audit.record import UNDECIDED, Checker, Claim, Verdict, hypothesis
from tc0sim.errors import ConfigError

CLAIMED = "uniform TC^0 (depth O(1), size poly(n))"
UNDECIDABLE = "fixed configuration: asymptotic hypotheses are not decidable"
ASYMPTOTIC_STATUS = f"{UNDECIDED}: an asymptotic hypothesis, not decidable on one fixed configuration"


def _reading_status(holds: Mapping[str, bool], n_of: Mapping[str, int]) -> str:
    """'holds for n = side 16; fails for n = tokens 341, pixels 65,536' (either part may be empty)."""
    parts = [f"{word} for n = " + ", ".join(f"{r} {n_of[r]:,}" for r, ok in holds.items() if ok is want)
             for word, want in (("holds", True), ("fails", False)) if any(ok is want for ok in holds.values())]
    return "; ".join(parts)


def _fixed_note(joint: Sequence[str], growth: str) -> str:
    readings = f"every concrete hypothesis holds for n = {', '.join(joint)}" if joint else \
        "no reading of n satisfies the concrete hypotheses together"
    return f"{readings}; {UNDECIDABLE}; the growth along the official scale lists is: {growth}"


def _flowar(claim: Claim, spec: Any) -> Verdict:
    """FlowAR as released: Theorem 4.9's preconditions and the closed-form depth (tc0sim.audit.flowar_release)."""
    from tc0sim.audit.flowar_release import audit_release

    result = audit_release(spec.params_at(None) if not spec.uses_n else spec.params_at(spec.n))
    n_of = result["readings"]
    hypotheses = [hypothesis(p["text"], None, _reading_status(p["holds"], n_of) + f" ({p['why']})" if p["holds"]
                             else ASYMPTOTIC_STATUS) for p in result["preconditions"]]
    notes = [_fixed_note(result["joint"], result["growth"])]
    notes += [f"outside the paper's primitives: {t}" for t in result["outside_primitives"]]
    notes += [f"outside the paper's model: {t}" for t in result["outside_structures"]]
    d = result["depth"]
    notes.append(f"closed form (K={d['K']}, L={d['L']}, B={d['B']}, S={d['S']}, u={d['u']}): " + "; ".join(result["depth"]["closed_form"]))
    computed = " | ".join(d["critical"])
    verdict = Verdict(claim.id, result["verdict"], CLAIMED, computed, notes, hypotheses=hypotheses)
    verdict.held_fixed = [f"the released configuration: K = {d['K']} scales, L = {d['L']} blocks per stack, B = {d['B']} "
                          f"head blocks, S = {d['S']} Euler steps", "n read as " + ", ".join(f"{r} = {n:,}" for r, n in n_of.items())]
    return verdict


def _var(claim: Claim, spec: Any) -> Verdict:
    """VAR as released: Theorem 5.11's preconditions on this configuration and its exact depth (tc0sim.audit.var_release)."""
    from tc0sim.audit.var_release import ASYMPTOTIC, NOT_IN_PAPER, audit_release

    result = audit_release(spec.params_at(spec.n if spec.uses_n else None))
    v = result["verdict"]
    hypotheses = [hypothesis(text, f"{value:,} <= n", _reading_status(holds, v.readings)) for text, value, holds in v.checks]
    hypotheses += [hypothesis(text, None, ASYMPTOTIC_STATUS) for text in ASYMPTOTIC]
    notes = [_fixed_note(v.joint, v.growth)]
    notes += [f"outside the paper's primitives: {p}" for p in result["outside_primitives"]]
    notes += [f"outside the paper's model: {t}" for t in NOT_IN_PAPER]
    form = "; ".join(f"{s} = {text}" for s, text in result["closed_form"].items() if text != "0·K·L + 0·K + 0")
    agree = "agrees with" if result["closed_form_agrees"] else "differs from"
    notes.append(f"closed form (K={result['K']}, L={result['L']}): {form}; it {agree} the exact per-symbol maxima here")
    critical = result["critical"]
    computed = critical[0] + (f" and {len(critical) - 1} more Pareto-maximal vectors (tc0sim depth lists them)" if len(critical) > 1 else "")
    verdict = Verdict(claim.id, v.word, CLAIMED, computed, notes, hypotheses=hypotheses)
    verdict.held_fixed = [f"the released configuration: K = {result['K']} scales, L = {result['L']} blocks, "
                          f"{v.resolution} px", "n read as " + ", ".join(f"{r} = {n:,}" for r, n in v.readings.items())]
    return verdict


RELEASES: dict[str, Callable[[Claim, Any], Verdict]] = {"flowar_release": _flowar, "var_release": _var}
"""Released model kind → its audit (the verdicts carry no claim record, so reports show no statement)."""


def on_file(claims: Sequence[Claim], spec: Any, ns: Sequence[int] | None = None, gates_p: int | None = None) -> list[Verdict]:
    """Each claim on the released configuration of the file."""
    return [RELEASES[spec.kind](claim, spec) for claim in claims]


def _validate(claim: Claim) -> None:
    """Every file kind the claim audits by release has a release audit."""
    unknown = [kind for kind, name in claim.files.items() if name == "release" and kind not in RELEASES]
    if unknown:
        raise ConfigError(f"no release audit for kind {', '.join(unknown)} (known: {', '.join(RELEASES)})")


CHECKER = Checker(frozenset(), None, on_file, _validate)
