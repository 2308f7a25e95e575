"""The audit engine: the papers' claims (tc0sim.audit.claims) checked against the computed DAG.

For each claim with a kind, the kind is built at the claim's dims (a model file's ``ModelSpec``, so
claims and files share one evaluator of dims in n) for a sweep of n and read by the depth and size
interpreters (docs/dag.md, issue 5 item 3). One verdict per claim:

* ``tight`` — every Pareto-maximal critical vector is ≤ the claimed vector and one equals it
  (for an O(1) claim: the critical set is identical at every n of the sweep);
* ``slack`` — every critical vector is ≤ the claim and none equals it (the slack is reported);
* ``violated`` — some critical vector is not ≤ the claim (its witness path, by operator, is
  reported), or the O(1) depth changes along the sweep;
* ``precondition`` — an audited instance breaks a machine-checkable precondition (named);
* ``unchecked`` — nothing on a DAG to compare (the registry's reason, or too few instances).

Sizes are fitted as exact polynomials in n (Fractions, verified on further points). Runtime claims
(FlowAR Lemmas 5.2, 5.5, 5.6) are compared through a proxy: the operation count of the lowering
(every gate, a ⊕/⊗ of fan-in k counted as k operations) at fixed channels, scales and degree.
The reports are rendered by ``tc0sim.audit.render``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tc0sim import polyfit
from tc0sim.audit.approx_checks import APPROX_CHECKS, model_checks
from tc0sim.audit.claims import CLAIMS, Claim, claimed_depth, get
from tc0sim.errors import Tc0simError
from tc0sim.expr import parse_comparison
from tc0sim.interp.depth import DepthResult, depth
from tc0sim.interp.size import fan_in, size
from tc0sim.ir.graph import Graph
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS
from tc0sim.ir.vectors import ZERO, Vec, as_vec, leq, pareto_max, sub, to_dict
from tc0sim.ir.vectors import fmt as fmt_vec
from tc0sim.kinds import build, get_kind
from tc0sim.modelfile import ModelSpec, from_mapping

VERDICTS = ("tight", "slack", "violated", "precondition", "unchecked")
DEFAULT_NS: tuple[int, ...] = (2, 3, 4, 6, 8)
"""The n sweep of ``audit_claims`` and of model files whose dims use n."""

MIN_SWEEP = 3
"""Fewest instances a sweep should have; further n are tried when some n do not build."""

VERIFY_POINTS = 2
"""A fitted size polynomial must match this many further points to be reported as exact."""

MAX_SIZE_POINTS = 9
"""Most instances built for one size fit (degree ≤ MAX_SIZE_POINTS − VERIFY_POINTS − 1)."""

_RUNTIME_EXPONENT = re.compile(r"n\^\{?\s*(\d+)\s*(\+\s*o\(1\))?\s*\}?")
_FLOOR_DIVISOR = re.compile(r"//\s*(\d+)")


@dataclass
class Verdict:
    """The audit of one claim: verdict, claimed and computed depth, notes, slack and path."""

    id: str
    verdict: str
    claimed: str
    computed: str
    notes: list[str] = field(default_factory=list)
    slack: dict[str, int] | None = None
    path: list[tuple[str, Vec]] = field(default_factory=list)
    ns: list[int] = field(default_factory=list)
    witness: list[tuple[str, Vec]] = field(default_factory=list)
    size_polynomial: str | None = None
    claim: Claim | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: id, verdict, claimed, computed, notes, and the slack, path and ns."""
        return {
            "id": self.id,
            "verdict": self.verdict,
            "claimed": self.claimed,
            "computed": self.computed,
            "notes": list(self.notes),
            "slack": self.slack,
            "path": [{"operator": where, "depth": fmt_vec(v)} for where, v in self.path],
            "ns": list(self.ns),
            "size_polynomial": self.size_polynomial,
        }


@dataclass
class _Instance:
    """One built instance: its n (None for a fixed file), the names preconditions read, its graph."""

    n: int | None
    env: dict[str, int]
    graph: Graph
    depth: DepthResult


# ---------------------------------------------------------------------------------- operation counts


def operation_count(graph: Graph) -> int:
    """Sequential operations to evaluate the graph: one per gate, k per ⊕/⊗ gate of fan-in k."""
    total = 0
    for node, where, times in graph.occurrences():
        if PRIMITIVES[node.prim].is_wiring:
            continue
        reads = fan_in(node, where) if "reduction" in PRIMITIVES[node.prim].properties else 1
        total += times * node.size * reads
    return total


# ---------------------------------------------------------------------------------- instances


def _claim_env(dims: Mapping[str, int], n: int | None, params: Mapping[str, Any]) -> dict[str, int]:
    """Names a precondition may read: integer params, then n, then the dims (a dim n wins)."""
    env = {k: v for k, v in params.items() if isinstance(v, int) and not isinstance(v, bool)}
    if n is not None:
        env["n"] = n
    env.update(dims)
    return env


MAX_EXTRA_NS = 2
"""Most further n tried (doubling the largest) when fewer than MIN_SWEEP instances build."""


def _sweep(
    make: Callable[[int], tuple[dict[str, int], Graph]], ns: Iterable[int], notes: list[str], extend: bool = True
) -> list[_Instance]:
    """Build and measure the depth at each n; n that do not build are skipped with a note.

    When some but fewer than MIN_SWEEP instances build, up to MAX_EXTRA_NS further n are tried.
    """
    instances: list[_Instance] = []
    skipped: dict[str, list[int]] = {}
    candidates = sorted(set(ns))
    extra = max(candidates) if candidates else 1
    extras = 0
    while candidates:
        n = candidates.pop(0)
        try:
            env, graph = make(n)
        except Tc0simError as error:
            skipped.setdefault(str(error), []).append(n)
        else:
            instances.append(_Instance(n, env, graph, depth(graph)))
        if not candidates and extend and instances and len(instances) < MIN_SWEEP and extras < MAX_EXTRA_NS:
            extra *= 2
            extras += 1
            candidates.append(extra)
    if skipped:
        notes.append(
            "instances that do not build were skipped: "
            + "; ".join(f"n={', '.join(map(str, at))}: {message}" for message, at in skipped.items())
        )
    return instances


def _grid(ns: Sequence[int], divisors: Iterable[int]) -> int:
    """The step of n for size fitting: the gcd of the built n and every floor divisor of the dims."""
    step = 0
    for n in ns:
        step = math.gcd(step, n)
    step = step or 1
    for d in divisors:
        step = step * d // math.gcd(step, d)
    return step


GRID_MULTIPLIERS = (1, 2, 3, 4)
"""When the counts are not a polynomial on the grid of n, coarser grids (floors and ceilings inside a
kind, e.g. ⌈h/2⌉ pyramid levels) are tried: the grid step times each multiplier."""


def _size_fit(
    make: Callable[[int], tuple[dict[str, int], Graph]],
    built: Mapping[int, Graph],
    divisors: Iterable[int],
    measure: Callable[[Graph], int],
) -> tuple[list[Fraction] | None, list[int], dict[int, int]]:
    """Fit ``measure`` (size or operation count) as a polynomial in n on a grid of n, built as needed.

    Returns the coefficients (None when no grid gives a polynomial), the n it was verified at, and
    the measured points of the successful grid (of the finest grid when none succeeds).
    """
    step = _grid(sorted(built), divisors)
    measured = {n: measure(g) for n, g in built.items()}
    first: dict[int, int] | None = None
    for multiplier in GRID_MULTIPLIERS:
        coefficients, verified, points = _fit_on_grid(make, measured, step * multiplier, measure)
        if coefficients is not None:
            return coefficients, verified, points
        first = first if first is not None else points
    return None, [], first or {}


def _fit_on_grid(
    make: Callable[[int], tuple[dict[str, int], Graph]],
    measured: dict[int, int],
    step: int,
    measure: Callable[[Graph], int],
) -> tuple[list[Fraction] | None, list[int], dict[int, int]]:
    """Fit on the multiples of ``step``, building further multiples until the fit is verified."""
    points = {n: m for n, m in measured.items() if n % step == 0}
    n = max(points, default=0)
    attempts = 0
    while True:
        fit = polyfit.fit_and_verify(points, VERIFY_POINTS) if len(points) > VERIFY_POINTS else None
        if (fit is not None and fit.verified) or len(points) >= MAX_SIZE_POINTS or attempts >= 2 * MAX_SIZE_POINTS:
            break
        n += step
        attempts += 1
        if n not in measured:
            try:
                measured[n] = measure(make(n)[1])
            except Tc0simError:
                continue
        points[n] = measured[n]
    if fit is None or not fit.verified:
        return None, [], points
    return fit.coefficients, fit.checked_on, points


# ---------------------------------------------------------------------------------- verdicts


def _claimed_text(claim: Claim) -> str:
    if claim.runtime and claimed_depth(claim) is None:
        return f"runtime {claim.runtime}"
    return claimed_depth(claim) or claim.size or "—"


def _critical_text(vectors: Iterable[Vec]) -> str:
    return "; ".join(fmt_vec(v) for v in vectors) or "0"


def _grouped_path(result: DepthResult, v: Vec) -> list[tuple[str, Vec]]:
    """The witness path of ``v`` grouped by operator, without the operators that add no depth."""
    return [(where, w) for where, w in result.by_operator(result.witness(v)) if w != ZERO]


def _steps_note(claim: Claim) -> str | None:
    """Whether the proof's own step depths add up to the stated total."""
    total = steps_total(claim)
    if total is None:
        return None
    if claim.depth is None:
        stated = "claims only O(1)" if claim.depth_o1 else "states no depth"
        return f"the proof's steps add up to {fmt_vec(total)} (the statement {stated})"
    stated = as_vec(claim.depth)
    if total == stated:
        return f"the proof's steps add up to the stated total {fmt_vec(stated)}"
    return f"the proof's steps do NOT add up: they sum to {fmt_vec(total)}, the stated total is {fmt_vec(stated)}"


def steps_total(claim: Claim) -> Vec | None:
    """The sum of the depths of the proof's steps (None when no step states a depth)."""
    steps = [s for s in claim.steps if s.depth]
    if not steps:
        return None
    total = ZERO
    for step in steps:
        total = tuple(a + b for a, b in zip(total, as_vec(step.depth)))  # type: ignore[assignment]
    return total


def _preconditions(claim: Claim, instances: Sequence[_Instance], notes: list[str]) -> list[str]:
    """The failures of machine-checkable preconditions at the audited instances."""
    failures: list[str] = []
    for pre in claim.preconditions:
        if pre.check is None:
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
    return failures


def _vector_verdict(claim_vec: Vec, instances: Sequence[_Instance], verdict: Verdict) -> None:
    """tight / slack / violated for an explicit depth vector, over every instance of the sweep."""
    union = pareto_max(v for inst in instances for v in inst.depth.critical)
    verdict.computed = _critical_text(union)
    for inst in instances:
        bad = inst.depth.violations(claim_vec)
        if bad:
            verdict.verdict = "violated"
            worst = max(bad, key=lambda v: (sum(max(0, a - b) for a, b in zip(v, claim_vec)), v))
            verdict.path = _grouped_path(inst.depth, worst)
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


def _constant_verdict(instances: Sequence[_Instance], verdict: Verdict, sweep: bool) -> None:
    """O(1): the critical set must be identical at every n of the sweep (never one instance)."""
    if not sweep or len(instances) < 2:
        verdict.verdict = "unchecked"
        verdict.computed = _critical_text(instances[-1].depth.critical) if instances else "—"
        verdict.notes.append("one instance: O(1) depth needs an n sweep")
        return
    first = instances[0]
    changed = [inst for inst in instances if inst.depth.critical != first.depth.critical]
    last = instances[-1]
    verdict.computed = _critical_text(last.depth.critical)
    if not changed:
        verdict.verdict = "tight"
        verdict.notes.append(
            "critical depth identical at n = " + ", ".join(str(i.n) for i in instances)
        )
        return
    verdict.verdict = "violated"
    verdict.notes.append(
        "critical depth changes with n: "
        + "; ".join(f"n={inst.n}: {_critical_text(inst.depth.critical)}" for inst in instances)
    )
    grown = next((v for v in last.depth.critical if not any(leq(v, w) for w in first.depth.critical)), None)
    if grown is not None:
        verdict.path = _grouped_path(last.depth, grown)


def _size_notes(
    claim: Claim,
    make: Callable[[int], tuple[dict[str, int], Graph]] | None,
    instances: Sequence[_Instance],
    divisors: Iterable[int],
    verdict: Verdict,
) -> None:
    """The exact size polynomial over the sweep, against ``size_degree`` / poly(n)."""
    if not instances:
        return
    if make is None or len(instances) < 2:
        totals = ", ".join(f"{size(i.graph).total}" for i in instances)
        verdict.notes.append(f"size {totals} gates at the instance (a size polynomial needs an n sweep)")
        return
    built = {inst.n: inst.graph for inst in instances if inst.n is not None}
    coefficients, verified, points = _size_fit(make, built, divisors, lambda g: size(g).total)
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


def _divisors(dims: Iterable[str]) -> list[int]:
    return [int(m) for text in dims for m in _FLOOR_DIVISOR.findall(str(text))]


def _claim_maker(
    claim_kind: str, dims: Mapping[str, str], params: Mapping[str, Any] | None = None
) -> Callable[[int], tuple[dict[str, int], Graph]]:
    """Build ``claim_kind`` at the dims (and optional params, expressions in n) evaluated at n.

    The dims and params are read as a model file's (``from_mapping``), so claims and model files
    share one evaluator; the kind's own refusals are reported without the file prefix.
    """
    data = {"kind": claim_kind, "dims": dict(dims), "params": dict(params or {})}
    spec = from_mapping(data, source=f"the dims of {claim_kind}")
    return _spec_maker(spec, lambda n, values, chosen: build(claim_kind, values, chosen))


def _spec_maker(
    spec: ModelSpec, build_graph: Callable[[Any, dict[str, int], dict[str, Any]], Graph]
) -> Callable[[Any], tuple[dict[str, int], Graph]]:
    """At n: the names a precondition reads (``_claim_env``) and the graph ``build_graph`` builds."""
    defaults = get_kind(spec.kind).defaults

    def make(n: int | None) -> tuple[dict[str, int], Graph]:
        dims, params = spec.dims_at(n), spec.params_at(n)
        return _claim_env(dims, n, {**defaults, **params}), build_graph(n, dims, params)

    return make


def _audit(
    claim: Claim,
    make: Callable[[int], tuple[dict[str, int], Graph]] | None,
    instances: list[_Instance],
    sweep: bool,
    notes: list[str],
    divisors: Iterable[int] = (),
    gates_p: int | None = None,
) -> Verdict:
    """The verdict of one claim on the given instances (a sweep over n, or one fixed instance).

    With ``gates_p`` a note gives the depth with tc0sim's threshold circuits at p = gates_p."""
    verdict = Verdict(claim.id, "unchecked", _claimed_text(claim), "—", list(notes), claim=claim)
    verdict.ns = [inst.n for inst in instances if inst.n is not None]
    if not instances:
        verdict.notes.append("no instance could be built")
        return _finish(claim, verdict)
    failures = _preconditions(claim, instances, verdict.notes)
    if claim.depth is not None:
        _vector_verdict(as_vec(claim.depth), instances, verdict)
        if claim.depth_o1 and sweep and len(instances) > 1:
            constant = all(inst.depth.critical == instances[0].depth.critical for inst in instances)
            verdict.notes.append(
                "critical depth identical across the sweep" if constant else "critical depth changes along the sweep"
            )
    elif claim.depth_o1:
        _constant_verdict(instances, verdict, sweep)
    else:
        verdict.computed = _critical_text(instances[-1].depth.critical)
        verdict.notes.append("the claim states no depth")
    last = instances[-1]
    if verdict.verdict != "violated" and last.depth.critical:
        top = max(last.depth.critical, key=lambda v: (sum(v), v))
        verdict.witness = _grouped_path(last.depth, top)
    _size_notes(claim, make if sweep else None, instances, divisors, verdict)
    if gates_p is not None:
        verdict.notes.append(_threshold_note(last, gates_p))
    if failures:
        verdict.notes.extend(failures)
        verdict.verdict = "precondition"
    return _finish(claim, verdict)


def _threshold_note(instance: _Instance, p: int) -> str:
    from tc0sim.interp.threshold import account

    acc = account(instance.graph, instance.depth, p)
    at = f" (n = {instance.n})" if instance.n is not None else ""
    missing = "; symbolic: " + "; ".join(acc.unresolved.values()) if acc.unresolved else ""
    return f"with these circuits, depth = {acc.depth_text()} gates at p = {p}{at}{missing}"


def _finish(claim: Claim, verdict: Verdict) -> Verdict:
    note = _steps_note(claim)
    if note:
        verdict.notes.append(note)
    return verdict


def _runtime_exponent(runtime: str) -> int | None:
    match = _RUNTIME_EXPONENT.search(runtime)
    return int(match.group(1)) if match else None


def _runtime_verdict(claim: Claim, ns: Sequence[int]) -> Verdict:
    """A runtime claim n^{a+o(1)} against the operation count of its proxy lowering (fixed widths)."""
    kind, dims, fixed = claim.kind, claim.dims, claim.fixed
    verdict = Verdict(claim.id, "unchecked", f"runtime {claim.runtime}", "—", claim=claim)
    exponent = _runtime_exponent(claim.runtime)
    verdict.notes.append("runtime claim")
    try:
        make = _claim_maker(kind, dims)
    except Tc0simError as error:
        verdict.notes.append(f"proxy kind {kind!r} is not available: {error}")
        return _finish(claim, verdict)
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
        return _finish(claim, verdict)
    verdict.ns = sorted(built)
    coefficients, verified, points = _size_fit(make, built, _divisors(dims.values()), operation_count)
    if coefficients is None or exponent is None:
        verdict.notes.append(
            f"proxy {kind}: operation count not a polynomial in n on n = {', '.join(map(str, sorted(points)))}"
            if coefficients is None
            else f"no exponent n^a found in {claim.runtime!r}"
        )
        return _finish(claim, verdict)
    degree = len(coefficients) - 1
    verdict.computed = f"Θ({polyfit.text([Fraction(0)] * degree + [Fraction(1)])}) operations"
    verdict.size_polynomial = polyfit.text(coefficients)
    verdict.notes.append(
        f"proxy: {kind} with dims {', '.join(f'{k}={v}' for k, v in dims.items())} ({fixed}); its operation "
        f"count (each gate once, a ⊕ of fan-in k as k operations) is {verdict.size_polynomial}, degree "
        f"{degree}, verified at n = {', '.join(map(str, verified))}"
    )
    verdict.notes.append(
        "checkable: the polynomial exponent at fixed widths; not checkable: the o(1) term, c = O(log n) "
        "(a fixed c only bounds it), the cost of one F_p operation (poly(p)), and the approximation error"
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
    return _finish(claim, verdict)


def audit_claim(claim: Claim, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None) -> Verdict:
    """Audit one claim at its own dims over the n sweep ``ns`` (see the module docstring)."""
    if claim.id in APPROX_CHECKS:
        verdict_name, claimed, computed, notes = APPROX_CHECKS[claim.id]()
        return _finish(claim, Verdict(claim.id, verdict_name, claimed, computed, notes, claim=claim))
    if claim.runtime and claim.kind:
        return _runtime_verdict(claim, ns)
    if claim.kind is None:
        verdict = Verdict(claim.id, "unchecked", _claimed_text(claim), "—", claim=claim)
        verdict.notes.append(claim.unchecked or "the registry gives no kind to build")
        return _finish(claim, verdict)
    notes: list[str] = []
    params = getattr(claim, "params", None) or {}
    make = _claim_maker(claim.kind, claim.dims, params)
    instances = _sweep(make, ns, notes)
    texts = [*claim.dims.values(), *(str(x) for x in params.values())]
    return _audit(claim, make, instances, True, notes, _divisors(texts), gates_p)


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
    """The depth and size audit of the file (:func:`audit_model_depth`) and, for a ``var`` file, the
    universal-approximation bounds measured on the file's own weights (tc0sim.audit.approx_checks)."""
    verdicts = audit_model_depth(spec, ns, claims, gates_p)
    if spec.kind != "var":
        return verdicts
    pool = {c.id: c for c in (CLAIMS if claims is None else tuple(claims))}
    for claim_id, (name, claimed, computed, notes) in model_checks(spec).items():
        if claim_id in pool:
            verdicts.append(_finish(pool[claim_id], Verdict(claim_id, name, claimed, computed, notes, claim=pool[claim_id])))
    return verdicts


def audit_model_depth(
    spec: Any, ns: Sequence[int] | None = None, claims: Iterable[Claim] | None = None,
    gates_p: int | None = None,
) -> list[Verdict]:
    """Audit the claims whose kind is the model file's kind on the file's own instance.

    ``spec`` is a ``tc0sim.modelfile.ModelSpec``. When its dims or params use n, the sweep ``ns``
    (default: the file's ``sweep:``, else DEFAULT_NS) is audited, n that do not build skipped;
    otherwise its one instance is, and O(1) claims are then unchecked. When the file has no n, n is
    taken from the claim's dims written as plain ``n`` if the file's values agree on one. Runtime
    claims on the kind are audited on their own proxy sweep (``claim.dims``, ``claim.fixed``).
    """
    if spec.kind == "flowar_release" and claims is None:
        return [_release_verdict(spec)]
    if spec.kind == "var_release" and claims is None:
        return [_var_release_verdict(spec)]
    pool = CLAIMS if claims is None else tuple(claims)
    matching = [c for c in pool if c.kind == spec.kind and not c.runtime]
    runtime = [_runtime_verdict(c, tuple(ns) if ns is not None else DEFAULT_NS) for c in pool if c.kind == spec.kind and c.runtime]
    if not matching:
        return runtime
    make = _spec_maker(spec, lambda n, dims, params: spec.build(n))

    texts = [str(v) for v in spec.dims.values()] + [
        str(x) for v in spec.params.values() for x in (v if isinstance(v, list) else [v])
    ]
    divisors = _divisors(texts)
    notes: list[str] = []
    if spec.uses_n:
        sweep_ns = tuple(ns) if ns is not None else tuple(getattr(spec, "sweep", None) or DEFAULT_NS)
        instances = _sweep(make, sweep_ns, notes, extend=False)
        return [_audit(claim, make, instances, True, notes, divisors, gates_p) for claim in matching] + runtime
    env, graph = make(None)
    if getattr(spec, "n", None) is not None and "n" not in env:
        env["n"] = spec.n
    base = _Instance(None, env, graph, depth(graph))
    verdicts = []
    for claim in matching:
        own_notes = list(notes)
        instance = base
        if "n" not in env:
            inferred = _infer_n(claim, env)
            if inferred is None:
                own_notes.append("the file does not define n: preconditions that read n are not checked")
            else:
                own_notes.append(f"n = {inferred} read from the claim's dims written as plain n")
                instance = _Instance(None, {"n": inferred, **env}, graph, base.depth)
        verdicts.append(_audit(claim, None, [instance], False, own_notes, divisors, gates_p))
    return verdicts + runtime


def _release_verdict(spec: Any) -> Verdict:
    """FlowAR as released: Theorem 4.9's preconditions and the closed-form depth (tc0sim.audit.flowar_release)."""
    from tc0sim.audit.flowar_release import audit_release

    result = audit_release(spec.params_at(None) if not spec.uses_n else spec.params_at(spec.n))
    notes = [f"{p['text']}: {'holds' if p['holds'] else 'fails'} ({p['why']})" for p in result["preconditions"]]
    notes += [f"outside the paper's primitives: {t}" for t in result["outside_primitives"]]
    notes += [f"outside the paper's model: {t}" for t in result["outside_structures"]]
    d = result["depth"]
    notes.append(f"closed form (K={d['K']}, L={d['L']}, B={d['B']}, S={d['S']}, u={d['u']}): " + "; ".join(result["depth"]["closed_form"]))
    computed = " | ".join(d["critical"])
    return Verdict("FlowAR-T4.9", "precondition", "uniform TC^0 (depth O(1), size poly(n))", computed, notes)


def _var_release_verdict(spec: Any) -> Verdict:
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
    return Verdict("VAR-T5.11", "precondition", "uniform TC^0 (depth O(1), size poly(n))", computed, notes)


def _infer_n(claim: Claim, dims: Mapping[str, int]) -> int | None:
    """The n of a fixed instance: the common value of the dims the claim writes as plain ``n``."""
    values = {dims[k] for k, text in claim.dims.items() if str(text).strip() == "n" and k in dims}
    return values.pop() if len(values) == 1 else None
