"""The audit's reports: verdicts as a rich table, JSON or markdown, and docs/claims.md.

The engine (``tc0sim.audit.audit``) decides the verdicts; this module only renders them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence

from tc0sim.audit.audit import DEFAULT_NS, MIN_SWEEP, VERDICTS, VERIFY_POINTS, Verdict, audit_claims, steps_total
from tc0sim.errors import ConfigError
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import Vec, add, as_vec
from tc0sim.ir.vectors import fmt as fmt_vec

NONE_STATED = "none stated"
NOTHING_HELD = "nothing (no instance is audited)"
PATH_GROUPS = 16
"""A displayed path with more operator groups is merged to shorter scope prefixes."""


def coarsen(path: Sequence[tuple[str, Vec]], limit: int = PATH_GROUPS) -> list[tuple[str, Vec]]:
    """Merge consecutive groups of a path by scope prefix, keeping the deepest prefix giving ≤ limit groups."""
    deepest = max((where.count("/") + 1 for where, _ in path), default=1)
    best: list[tuple[str, Vec]] = list(path)
    for keep in range(deepest, 0, -1):
        merged: list[tuple[str, Vec]] = []
        for where, v in path:
            prefix = "/".join(where.split("/")[:keep])
            if merged and merged[-1][0] == prefix:
                merged[-1] = (prefix, add(merged[-1][1], v))
            else:
                merged.append((prefix, v))
        best = merged
        if len(merged) <= limit:
            break
    return best


def _path_text(path: Sequence[tuple[str, Vec]]) -> str:
    return " → ".join(f"{where}: {fmt_vec(v)}" for where, v in coarsen(path))


def render(verdicts: Sequence[Verdict], fmt: str = "text") -> str:
    """The verdicts as a rich table ("text"), JSON ({"claims": [...]}) or markdown (table + details)."""
    if fmt == "json":
        return json.dumps({"claims": [v.as_dict() for v in verdicts]}, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _markdown(verdicts)
    if fmt == "text":
        return _text(verdicts)
    raise ConfigError(f"unknown format {fmt!r}; expected text, json or markdown")


def _text(verdicts: Sequence[Verdict]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="audit of the papers' claims", show_lines=True)
    for column in ("id", "verdict", "claimed", "computed", "notes"):
        table.add_column(column, overflow="fold")
    for v in verdicts:
        notes = [*_context(v), *v.notes]
        if v.path:
            notes.insert(0, "path: " + _path_text(v.path))
        word = v.verdict + (f" ({v.scope})" if v.scope else "")
        if v.corrected:
            word += f"\ncorrected reading: {v.corrected['verdict']}"
        table.add_row(v.id, word, v.claimed, v.computed, "\n".join(notes))
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None, force_terminal=False).print(table)
    return buffer.getvalue()


def _hypothesis_text(h: dict[str, str]) -> str:
    check = f" [{h['check']}]" if h["check"] else ""
    return f"{h['text']}{check}: {h['status']}"


def _context(v: Verdict) -> list[str]:
    """What a verdict rests on, one line each: hypotheses, what was held fixed, the growth, the corrected reading."""
    lines = []
    if v.corrected:
        lines.append(f"corrected reading ({v.corrected['reading']}): {v.corrected['verdict']}")
    lines.append("hypotheses: " + ("; ".join(_hypothesis_text(h) for h in v.hypotheses) or NONE_STATED))
    lines.append("held fixed: " + ("; ".join(v.held_fixed) or NOTHING_HELD))
    lines += [f"growth: {g['text']}" for g in v.growth]
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(verdicts: Sequence[Verdict]) -> str:
    lines = ["| claim | reference | verdict | claimed | computed |", "|---|---|---|---|---|"]
    for v in verdicts:
        ref = f"{v.claim.paper} {v.claim.ref}" if v.claim else ""
        lines.append(
            f"| [{v.id}](#{_anchor(v.id)}) | {_cell(ref)} | **{v.verdict}**{_beside(v)} | {_cell(v.claimed)} | {_cell(v.computed)} |"
        )
    counts = {name: sum(v.verdict == name for v in verdicts) for name in VERDICTS}
    lines += ["", "Verdicts: " + ", ".join(f"{counts[name]} {name}" for name in VERDICTS if counts[name]) + ".", ""]
    for v in verdicts:
        lines += _markdown_details(v)
    return "\n".join(lines).rstrip() + "\n"


def _beside(v: Verdict) -> str:
    """What the summary table writes beside the verdict word: the scope, the corrected reading's verdict."""
    extra = [v.scope] if v.scope else []
    if v.growth:
        extra += [f"+{g['per_unit']} per added {g['quantity']}" for g in v.growth if g.get("per_unit")]
    if v.corrected:
        extra.append(f"corrected reading: {v.corrected['verdict']}")
    return f" ({'; '.join(extra)})" if extra else ""


def _anchor(claim_id: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", claim_id.lower().replace(" ", "-"))


def _markdown_details(v: Verdict) -> list[str]:
    claim = v.claim
    title = f"{v.id} — {claim.title}" if claim else v.id
    out = [f'<a id="{_anchor(v.id)}"></a>', f"### {title}", ""]
    if claim:
        out += [f"*{claim.paper}, {claim.ref}.* {claim.statement}", ""]
    scope = f" ({v.scope})" if v.scope else ""
    out.append(f"- **Verdict: {v.verdict}{scope}.** Claimed: {v.claimed}. Computed: {v.computed}.")
    if v.corrected:
        out.append(f"- Corrected reading ({v.corrected['reading']}): **{v.corrected['verdict']}**.")
    if v.hypotheses:
        out.append("- Hypotheses:")
        out += [f"  - {_hypothesis_text(h)}" for h in v.hypotheses]
    else:
        out.append(f"- Hypotheses: {NONE_STATED}.")
    out.append("- Held fixed: " + ("; ".join(v.held_fixed) or NOTHING_HELD) + ".")
    if v.growth:
        out.append("- Growth in what is held fixed:")
        out += [f"  - {g['text']}" for g in v.growth]
    if v.slack:
        out.append(f"- Slack: {fmt_vec(as_vec(v.slack)) if all(k in SYMBOLS for k in v.slack) else v.slack}.")
    if v.path:
        out.append(f"- Offending path by operator: {_path_text(v.path)}.")
    elif v.witness:
        out.append(f"- Critical path by operator: {_path_text(v.witness)}.")
    if claim and claim.kind:
        dims = ", ".join(f"{k} = {t}" for k, t in claim.dims.items())
        params = getattr(claim, "params", None) or {}
        if params:
            dims += " and params " + ", ".join(f"{k} = {t}" for k, t in params.items())
        out.append(f"- Built as `{claim.kind}` with {dims}" + (f" at n = {', '.join(map(str, v.ns))}." if v.ns else "."))
    elif v.ns:
        out.append(f"- Audited at n = {', '.join(map(str, v.ns))}.")
    if claim and claim.steps:
        out.append("- Proof steps:")
        for step in claim.steps:
            out.append(f"  - {step.text} — **{fmt_vec(as_vec(step.depth))}**" if step.depth else f"  - {step.text}")
        total = steps_total(claim)
        if total is not None:
            if claim.depth is None:
                out.append(f"  - Sum of the steps: {fmt_vec(total)} (the statement claims O(1)).")
            elif total == as_vec(claim.depth):
                out.append(f"  - Sum of the steps: {fmt_vec(total)} — adds up to the stated total.")
            else:
                out.append(
                    f"  - Sum of the steps: {fmt_vec(total)} — does NOT add up to the stated total "
                    f"{fmt_vec(as_vec(claim.depth))}."
                )
    if v.notes:
        out.append("- Audit notes:")
        out += [f"  - {note}" for note in v.notes]
    if claim and claim.note:
        out.append(f"- Registry note: {claim.note}")
    out.append("")
    return out


CLAIMS_HEADER = """# The papers' claims, audited

<!-- Generated by `python -m tc0sim.cli.docs` from the claim files tc0sim/audit/claims/*.yaml; do not edit by hand. -->

This file is generated: regenerate it with `python -m tc0sim.cli.docs` (a test fails when it is stale).
Every claim of the registry (`tc0sim claims`; one YAML file per paper in `tc0sim/audit/claims/`) is
audited by `tc0sim.audit.audit.audit_claims()` with the checker its `check` field names (`sweep`,
`runtime`, `approx`, `unchecked`; one module each in `tc0sim/audit/checkers/`, and `release` for
the released models' files; how to add a claim or a checker: docs/dag.md). A `sweep` claim's
kind is built at its dims for n = {ns} (n that do not build are skipped; further n are
tried when fewer than {min_sweep} build), and the depth interpreter's Pareto-maximal critical
vectors are compared with the claim. Verdicts:

- **tight** — every critical vector is ≤ the claimed vector and one equals it; for an O(1)
  claim, the critical set is identical at every n of the sweep (never inferred from one n);
- **slack** — every critical vector is ≤ the claim, none equals it (the slack is given);
- **violated** — some critical vector exceeds the claim (the offending path is given by operator),
  or an O(1) depth changes along the sweep, or a runtime proxy grows faster than claimed;
- **precondition** — an audited instance breaks a machine-checkable precondition (named);
- **unchecked** — nothing on a DAG to compare (the reason is given).

Every verdict lists its **hypotheses** (each precondition with its status: holds at every audited
instance, fails at the instances named, or not machine-checkable — an asymptotic or existential
hypothesis no fixed instance decides) and what its instances **held fixed** (constant dims, the
kind's default params, the n range). An O(1) verdict means constant in n *with those quantities
held*: it reports the depth's **growth** per added scale, layer or kernel row, fitted on two values
and verified on two more (e.g. VAR Theorem 5.11 below). Runtime verdicts (FlowAR Lemmas 5.2, 5.5,
5.6) are about the **exponent at fixed d, c, g**: the operation count of a proxy lowering at fixed
widths (a ⊕ of fan-in k counts k operations) fitted as a polynomial in n.

Sizes are exact gate counts fitted as polynomials in n with rationals and verified on {verify}
further points.

The universal-approximation claims (ids `UA-…`; docs/approx.md) and FlowAR's error lemmas D.3–D.7
are not depth claims: their bounds are checked on seeded instances evaluated with tc0sim's own
operators — **slack** means the bound holds on every instance (the ratio of bound to measured error
is given), **violated** that an instance breaks it (the instance is given), and

- **violated as printed** — the claim as printed fails on an instance, but a stated corrected
  reading (e.g. Lipschitz for the printed growth bound of UA Lemma 6.4) holds: the corrected
  reading and its verdict are given beside it;
- **by construction** — a bound the claim's own hypotheses guarantee (the triangle inequality on
  errors measured at the same point, UA Lemmas 6.3 and 6.5): it held, and could only fail through
  a bug;
- **unchecked** — definitions and existence statements ("there exists a transformer …"): no
  measurement decides them; what was measured is given as a note.

A model as released (a `var_release` or `flowar_release` file, checker `release`) is one fixed
circuit: each concrete precondition of its theorem is evaluated under every reading of n (tokens,
pixels, side), and the verdict is **precondition** when no reading satisfies them together, else
**unchecked** — a fixed configuration cannot decide an asymptotic hypothesis, and the depth's growth
along the official scale lists is given instead.

Exit status: `tc0sim audit` exits with status 1 when some verdict is **violated** or **violated as
printed** — it follows the claim *as printed*, not the corrected reading (`tc0sim.audit.audit.FAILING`).

"""


def claims_markdown(ns: Sequence[int] = DEFAULT_NS) -> str:
    """docs/claims.md: the markdown audit of the whole registry with a header on regenerating it."""
    header = CLAIMS_HEADER.format(
        ns=", ".join(map(str, ns)), min_sweep=MIN_SWEEP, verify=VERIFY_POINTS
    )
    return header + render(audit_claims(ns=ns), "markdown")
