"""The depth and size of a claim's kind along an n sweep, against the stated vector (or O(1)).

The claim's kind is built at its dims for each n (``tc0sim.audit.instances``); on a model file of
its kind, at the file's dims (its sweep when they use n, else its one instance). One verdict:
``tight`` / ``slack`` / ``violated`` against an explicit vector over every instance, an O(1)
claim ``tight`` when the critical set is identical along the sweep, ``precondition`` when a
machine-checkable precondition fails; the exact size polynomial in n is a note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tc0sim import polyfit
from tc0sim.audit.instances import (
    DEFAULT_NS, Instance, Maker, claim_maker, divisors, size_fit, spec_maker, sweep,
)
from tc0sim.audit.growth import growth
from tc0sim.audit.record import UNDECIDED, Checker, Claim, Verdict, claimed_text, finish, hypothesis
from tc0sim.errors import Tc0simError
from tc0sim.expr import parse_comparison
from tc0sim.interp.depth import DepthResult, depth
from tc0sim.interp.size import size
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import Vec, as_vec, leq, pareto_max, sub, to_dict, zero
from tc0sim.ir.vectors import fmt as fmt_vec


def critical_text(vectors: Iterable[Vec]) -> str:
    return "; ".join(fmt_vec(v) for v in vectors) or "0"


def grouped_path(result: DepthResult, v: Vec) -> list[tuple[str, Vec]]:
    """The witness path of ``v`` grouped by operator, without the operators that add no depth."""
    return [(where, w) for where, w in result.by_operator(result.witness(v)) if w != zero()]


def _preconditions(claim: Claim, instances: Sequence[Instance], notes: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """The failures of machine-checkable preconditions at the audited instances, and every
    precondition's status (a hypothesis of the verdict)."""
    failures: list[str] = []
    hypotheses: list[dict[str, str]] = []
    for pre in claim.preconditions:
        if pre.check is None:
            hypotheses.append(hypothesis(pre.text, None, UNDECIDED))
            continue
        failing: list[str] = []
        unknown: list[str] = []
        for inst in instances:
            where = f"n={inst.n}" if inst.n is not None else "the instance"
            try:
                comparison = parse_comparison(pre.check, tuple(inst.env))
            except Tc0simError as error:
                unknown.append(f"{where} ({error})")
                continue
            if not comparison.eval(inst.env):
                values = ", ".join(f"{k}={inst.env[k]}" for k in sorted(comparison.names))
                failing.append(f"{where} ({values})")
        if failing:
            failures.append(f"precondition '{pre.text}' [{pre.check}] fails at " + ", ".join(failing))
        if unknown:
            notes.append(f"precondition '{pre.text}' [{pre.check}] not checkable at " + "; ".join(unknown))
        status = ("fails at " + ", ".join(failing)) if failing else (
            "not checkable at " + "; ".join(unknown) if unknown else "holds at every audited instance")
        hypotheses.append(hypothesis(pre.text, pre.check, status))
    return failures, hypotheses


def _vector_verdict(claim_vec: Vec, instances: Sequence[Instance], verdict: Verdict) -> None:
    """tight / slack / violated for an explicit depth vector, over every instance of the sweep."""
    union = pareto_max(v for inst in instances for v in inst.depth.critical)
    verdict.computed = critical_text(union)
    for inst in instances:
        bad = inst.depth.violations(claim_vec)
        if bad:
            verdict.verdict = "violated"
            worst = max(bad, key=lambda v: (sum(max(0, a - b) for a, b in zip(v, claim_vec)), v))
            verdict.path = grouped_path(inst.depth, worst)
            excess = {s: a - b for s, a, b in zip(SYMBOLS, worst, claim_vec) if a > b}
            where = f"n={inst.n}" if inst.n is not None else "the instance"
            verdict.notes.append(
                f"at {where} the critical vector {fmt_vec(worst)} exceeds the claim by "
                + " + ".join(f"{c} {s}" for s, c in excess.items())
            )
            return
    if claim_vec in union:
        verdict.verdict = "tight"
        return
    verdict.verdict = "slack"
    slacks = [(v, sub(claim_vec, v)) for v in union]
    _, smallest = min(slacks, key=lambda pair: (sum(pair[1]), pair[1]))
    verdict.slack = to_dict(smallest)
    if len(slacks) > 1:
        verdict.notes.append(
            "slack per critical vector: " + "; ".join(f"{fmt_vec(v)} → {fmt_vec(s)}" for v, s in slacks)
        )
    else:
        verdict.notes.append(f"slack {fmt_vec(smallest)}")


def _constant_verdict(instances: Sequence[Instance], verdict: Verdict, swept: bool) -> None:
    """O(1): the critical set must be identical at every n of the sweep (never one instance)."""
    if not swept or len(instances) < 2:
        verdict.verdict = "unchecked"
        verdict.computed = critical_text(instances[-1].depth.critical) if instances else "—"
        verdict.notes.append("one instance: O(1) depth needs an n sweep")
        return
    first = instances[0]
    changed = [inst for inst in instances if inst.depth.critical != first.depth.critical]
    last = instances[-1]
    verdict.computed = critical_text(last.depth.critical)
    if not changed:
        verdict.verdict = "tight"
        verdict.notes.append(
            "critical depth identical at n = " + ", ".join(str(i.n) for i in instances)
        )
        return
    verdict.verdict = "violated"
    verdict.notes.append(
        "critical depth changes with n: "
        + "; ".join(f"n={inst.n}: {critical_text(inst.depth.critical)}" for inst in instances)
    )
    grown = next((v for v in last.depth.critical if not any(leq(v, w) for w in first.depth.critical)), None)
    if grown is not None:
        verdict.path = grouped_path(last.depth, grown)


def _size_notes(
    claim: Claim, make: Maker | None, instances: Sequence[Instance], steps: Iterable[int], verdict: Verdict
) -> None:
    """The exact size polynomial over the sweep, against ``size_degree`` / poly(n)."""
    if not instances:
        return
    if make is None or len(instances) < 2:
        totals = ", ".join(f"{size(i.graph).total}" for i in instances)
        verdict.notes.append(f"size {totals} gates at the instance (a size polynomial needs an n sweep)")
        return
    built = {inst.n: inst.graph for inst in instances if inst.n is not None}
    coefficients, verified, points = size_fit(make, built, steps, lambda g: size(g).total)
    if coefficients is None:
        verdict.notes.append(
            "size is not a polynomial in n on n = " + ", ".join(map(str, sorted(points)))
            + " (" + ", ".join(f"{points[n]}" for n in sorted(points)) + " gates)"
        )
        return
    degree = len(coefficients) - 1
    verdict.size_polynomial = polyfit.text(coefficients)
    stated = f"degree ≤ {claim.size_degree}" if claim.size_degree is not None else (claim.size or "no size claim")
    verdict.notes.append(
        f"size = {verdict.size_polynomial} gates (degree {degree} in n; fitted on n = "
        + ", ".join(str(n) for n in sorted(points) if n not in verified)
        + ", verified at n = " + ", ".join(map(str, verified)) + f"); claimed {stated}"
    )
    if claim.size_degree is not None and degree > claim.size_degree:
        verdict.notes.append(f"size degree {degree} exceeds the claimed degree {claim.size_degree}")
        if verdict.verdict != "precondition":
            verdict.verdict = "violated"


def _audit(
    claim: Claim,
    make: Maker | None,
    instances: list[Instance],
    swept: bool,
    notes: list[str],
    steps: Iterable[int] = (),
    gates_p: int | None = None,
) -> Verdict:
    """The verdict of one claim on the given instances (a sweep over n, or one fixed instance).

    With ``gates_p`` a note gives the depth with tc0sim's threshold circuits at p = gates_p."""
    verdict = Verdict(claim.id, "unchecked", claimed_text(claim), "—", list(notes), claim=claim)
    verdict.ns = [inst.n for inst in instances if inst.n is not None]
    if not instances:
        verdict.notes.append("no instance could be built")
        return finish(claim, verdict)
    failures, verdict.hypotheses = _preconditions(claim, instances, verdict.notes)
    if claim.depth is not None:
        _vector_verdict(as_vec(claim.depth), instances, verdict)
        if claim.depth_o1 and swept and len(instances) > 1:
            constant = all(inst.depth.critical == instances[0].depth.critical for inst in instances)
            verdict.notes.append(
                "critical depth identical across the sweep" if constant else "critical depth changes along the sweep"
            )
    elif claim.depth_o1:
        _constant_verdict(instances, verdict, swept)
        if swept and claim.growth:
            verdict.growth = growth(claim)
    else:
        verdict.computed = critical_text(instances[-1].depth.critical)
        verdict.notes.append("the claim states no depth")
    last = instances[-1]
    if verdict.verdict != "violated" and last.depth.critical:
        top = max(last.depth.critical, key=lambda v: (sum(v), v))
        verdict.witness = grouped_path(last.depth, top)
    _size_notes(claim, make if swept else None, instances, steps, verdict)
    if gates_p is not None:
        verdict.notes.append(_threshold_note(last, gates_p))
    if failures:
        verdict.notes.extend(failures)
        verdict.verdict = "precondition"
    return finish(claim, verdict)


def _threshold_note(instance: Instance, p: int) -> str:
    from tc0sim.interp.threshold import account

    acc = account(instance.graph, instance.depth, p)
    at = f" (n = {instance.n})" if instance.n is not None else ""
    missing = "; symbolic: " + "; ".join(acc.unresolved.values()) if acc.unresolved else ""
    return f"with these circuits, depth = {acc.depth_text()} gates at p = {p}{at}{missing}"


def own(claim: Claim, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None) -> Verdict:
    """The claim's kind at its own dims over the n sweep ``ns``."""
    notes: list[str] = []
    params = getattr(claim, "params", None) or {}
    make = claim_maker(claim.kind, claim.dims, params)
    instances = sweep(make, ns, notes)
    texts = [*claim.dims.values(), *(str(x) for x in params.values())]
    return _audit(claim, make, instances, True, notes, divisors(texts), gates_p)


def on_file(claims: Sequence[Claim], spec: Any, ns: Sequence[int] | None = None, gates_p: int | None = None) -> list[Verdict]:
    """The claims on the model file's own instance (``spec``: a ``tc0sim.modelfile.ModelSpec``).

    When its dims or params use n, the sweep ``ns`` (default: the file's ``sweep:``, else
    DEFAULT_NS) is audited, n that do not build skipped; otherwise its one instance is, and O(1)
    claims are then unchecked. When the file has no n, n is taken from the claim's dims written as
    plain ``n`` if the file's values agree on one.
    """
    make = spec_maker(spec, lambda n, dims, params: spec.build(n))
    texts = [str(v) for v in spec.dims.values()] + [
        str(x) for v in spec.params.values() for x in (v if isinstance(v, list) else [v])
    ]
    steps = divisors(texts)
    notes: list[str] = []
    if spec.uses_n:
        sweep_ns = tuple(ns) if ns is not None else tuple(getattr(spec, "sweep", None) or DEFAULT_NS)
        instances = sweep(make, sweep_ns, notes, extend=False)
        return [_audit(claim, make, instances, True, notes, steps, gates_p) for claim in claims]
    env, graph = make(None)
    if getattr(spec, "n", None) is not None and "n" not in env:
        env["n"] = spec.n
    base = Instance(None, env, graph, depth(graph))
    verdicts = []
    for claim in claims:
        own_notes = list(notes)
        instance = base
        if "n" not in env:
            inferred = _infer_n(claim, env)
            if inferred is None:
                own_notes.append("the file does not define n: preconditions that read n are not checked")
            else:
                own_notes.append(f"n = {inferred} read from the claim's dims written as plain n")
                instance = Instance(None, {"n": inferred, **env}, graph, base.depth)
        verdicts.append(_audit(claim, None, [instance], False, own_notes, steps, gates_p))
    return verdicts


def _infer_n(claim: Claim, dims: Mapping[str, int]) -> int | None:
    """The n of a fixed instance: the common value of the dims the claim writes as plain ``n``."""
    values = {dims[k] for k, text in claim.dims.items() if str(text).strip() == "n" and k in dims}
    return values.pop() if len(values) == 1 else None


CHECKER = Checker(frozenset({"kind"}), own, on_file)
