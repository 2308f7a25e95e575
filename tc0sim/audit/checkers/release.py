"""A main theorem on a model as released: its preconditions and exact depth on one fixed configuration.

VAR Theorem 5.11 on a ``var_release`` file (tc0sim.audit.var_release) and FlowAR Theorem 4.9 on a
``flowar_release`` file (tc0sim.audit.flowar_release): the fixed released circuit is trivially of
constant depth and size, so the verdict is ``precondition``, with the failing preconditions, the
primitives and structures outside the paper's, and the closed-form depth in the scales and layers.
Only on model files (a claim names the release kind in ``files``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tc0sim.audit.record import Checker, Claim, Verdict
from tc0sim.errors import ConfigError

CLAIMED = "uniform TC^0 (depth O(1), size poly(n))"


def _flowar(claim: Claim, spec: Any) -> Verdict:
    """FlowAR as released: Theorem 4.9's preconditions and the closed-form depth (tc0sim.audit.flowar_release)."""
    from tc0sim.audit.flowar_release import audit_release

    result = audit_release(spec.params_at(None) if not spec.uses_n else spec.params_at(spec.n))
    notes = [f"{p['text']}: {'holds' if p['holds'] else 'fails'} ({p['why']})" for p in result["preconditions"]]
    notes += [f"outside the paper's primitives: {t}" for t in result["outside_primitives"]]
    notes += [f"outside the paper's model: {t}" for t in result["outside_structures"]]
    d = result["depth"]
    notes.append(f"closed form (K={d['K']}, L={d['L']}, B={d['B']}, S={d['S']}, u={d['u']}): " + "; ".join(result["depth"]["closed_form"]))
    computed = " | ".join(d["critical"])
    return Verdict(claim.id, "precondition", CLAIMED, computed, notes)


def _var(claim: Claim, spec: Any) -> Verdict:
    """VAR as released: Theorem 5.11's preconditions on this configuration and its exact depth (tc0sim.audit.var_release)."""
    from tc0sim.audit.var_release import NOT_IN_PAPER, audit_release

    result = audit_release(spec.params_at(spec.n if spec.uses_n else None))
    v = result["verdict"]
    notes = [f"fails: {text}" for text in v.failing]
    notes += [f"outside the paper's primitives: {p}" for p in result["outside_primitives"]]
    notes += [f"outside the paper's model: {t}" for t in NOT_IN_PAPER]
    form = "; ".join(f"{s} = {text}" for s, text in result["closed_form"].items() if text != "0·K·L + 0·K + 0")
    agree = "agrees with" if result["closed_form_agrees"] else "differs from"
    notes.append(f"closed form (K={result['K']}, L={result['L']}): {form}; it {agree} the exact per-symbol maxima here")
    critical = result["critical"]
    computed = critical[0] + (f" and {len(critical) - 1} more Pareto-maximal vectors (tc0sim depth lists them)" if len(critical) > 1 else "")
    return Verdict(claim.id, "precondition", CLAIMED, computed, notes)


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
