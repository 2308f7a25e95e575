"""The registry of the papers' depth and size claims: data files beside this module, loaded and checked.

One YAML file per paper (:data:`CLAIM_FILES`: ``var.yaml``, ``flowar.yaml``, ``universality.yaml``), a
mapping ``paper: <name>``, ``claims: [<claim>, …]``; each claim an entry with the fields of
``tc0sim.audit.record.Claim`` (the schema :data:`FIELDS`). ``check`` names the checker of
``tc0sim.audit.checkers.CHECKERS`` that audits it; ``files`` maps further model-file kinds to the
checker that audits the claim on them (its own ``kind`` is audited by ``check``). Loading refuses an
unknown or missing field, a wrong type, an unknown checker or a field the checker needs left out,
naming the file and the claim. Adding a claim is one entry; docs/dag.md says how.

Sources (a note's "line N" is the line of the paper's plain-text extraction the registry was
written from; the lemma, theorem or definition number is the citation):

* VAR — *Circuit Complexity Bounds for Visual Autoregressive Model*, Yekun Ke, Xiaoyu Li,
  Yingyu Liang, Zhenmei Shi, Zhao Song, arXiv:2501.04299 (main result Theorem 5.11);
* FlowAR — *On Computational Limits of FlowAR Models: Expressivity and Efficiency*, Yang Cao,
  Chengyue Gong, Yekun Ke, Xiaoyu Li, Yingyu Liang, Zhizhou Sha, Zhenmei Shi, Zhao Song,
  arXiv:2502.16490 (Theorem 4.9; fast FlowAR in Section 5; the error lemmas D.3–D.7, measured);
* Universality — *Fundamental Limits of Visual Autoregressive Transformers: Universal Approximation
  Abilities*, Yifang Chen, Xiaoyu Li, Yingyu Liang, Zhenmei Shi, Zhao Song, ICML 2025
  (arXiv:2502.06167, first titled *Universal Approximation of Visual Autoregressive Transformers*):
  Definitions 5.2–5.3, Lemmas 5.4, 6.1, 6.3–6.5, C.1, Theorem 6.6, Corollaries 7.1–7.3 (ids ``UA-…``).

Conventions:

* Depth vectors are over the primitive table's symbols (``tc0sim.ir.primitives.SYMBOLS``); the papers' ``d_⊕`` is ``d_sum``, ``d_⊗`` is
  ``d_prod``, ``d_sqr``/``d_sqrt`` is ``d_sqrt``. Zero entries are omitted.
* ``depth`` is the explicit vector the paper states (in the statement, or as the
  proof's stated total when the statement only says O(1) — the note says which).
* a precondition's ``check`` is ``"<lhs> <op> <rhs>"`` over integers and names. A name is looked
  up in the claim's ``dims`` first (evaluated at the sweep's ``n``); the bare name ``n`` is
  the sweep's size parameter only when ``dims`` has no key ``n``. For the token-level kinds
  of the FlowAR paper (mlp, ffn, attention, layernorm) the kind's ``n`` is the token count
  ``h*w = n_side^2`` (the paper assumes ``h = w = n``), so the paper's ``c <= n`` reads
  ``c * c <= n`` there.
* ``size_degree`` is None throughout: no claim states an explicit polynomial degree for the
  circuit size (only ``poly(n)``); runtime exponents are recorded in ``runtime``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

import yaml

from tc0sim.audit.checkers import CHECKERS
from tc0sim.audit.record import Claim, Growth, Precondition, ProofStep, claimed_depth
from tc0sim.errors import ConfigError
from tc0sim.ir.primitives import SYMBOLS

VAR_PAPER = "VAR"
FLOWAR_PAPER = "FlowAR"
UA_PAPER = "Universality"

CLAIM_FILES: tuple[str, ...] = ("var.yaml", "flowar.yaml", "universality.yaml")
"""The registry's files in this package, in the order of the registry (a new paper is one more file)."""


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mapping(keys: Callable[[Any], bool], values: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and all(keys(k) and values(v) for k, v in value.items())


def _records(fields: Mapping[str, tuple[Callable[[Any], bool], bool]]) -> Callable[[Any], bool]:
    """A list of mappings with exactly these fields (name → (type, required))."""

    def ok(item: Any) -> bool:
        return (
            isinstance(item, dict) and set(item) <= set(fields)
            and all(name in item for name, (_, required) in fields.items() if required)
            and all(fields[name][0](value) for name, value in item.items())
        )

    return lambda value: isinstance(value, list) and all(ok(item) for item in value)


_VECTOR = _mapping(_text, _count)
_PRECONDITION = {"text": (_text, True), "check": (lambda v: v is None or _text(v), False)}
_STEP = {"text": (_text, True), "depth": (_VECTOR, False)}
_GROWTH = {"quantity": (_text, True), "at": (lambda v: isinstance(v, list) and all(_count(x) for x in v), True),
           "n": (_count, True), "param": (_text, False), "dim": (_text, False)}

_STRING = (_text, "a string")
FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{name: _STRING for name in ("id", "ref", "title", "statement", "measure", "fixed", "runtime", "size", "unchecked", "note",
                                   "nature")},
    "check": (_text, "a checker name"),
    "kind": (_text, "a kind name"),
    "dims": (_mapping(_text, lambda v: _text(v) or _count(v)), "a mapping of dim names to expressions in n"),
    "depth": (_VECTOR, "a mapping of depth symbols to counts"),
    "depth_o1": (_flag, "true or false"),
    "size_degree": (_count, "an integer"),
    "preconditions": (_records(_PRECONDITION), "a list of {text, check} (check an expression or null)"),
    "steps": (_records(_STEP), "a list of {text, depth}"),
    "files": (_mapping(_text, _text), "a mapping of model-file kinds to checker names"),
    "growth": (_records(_GROWTH), "a list of {quantity, param or dim, at: [values], n}"),
}
"""A claim entry's fields: the check of its value and what the check wants, for the error."""

REQUIRED = frozenset({"id", "ref", "title", "statement", "check"})


def _checked(entry: Mapping[str, Any]) -> list[str]:
    """The schema's complaints about one entry (empty when it is well formed)."""
    problems = [f"unknown field {name!r}" for name in entry if name not in FIELDS]
    problems += [f"missing field {name!r}" for name in sorted(REQUIRED - set(entry))]
    problems += [f"field {name!r} must be {FIELDS[name][1]}" for name, value in entry.items()
                 if name in FIELDS and not FIELDS[name][0](value)]
    if problems:
        return problems
    checks = {"check": entry["check"], **{f"files: {kind}": name for kind, name in entry.get("files", {}).items()}}
    problems = [f"{where} names unknown checker {name!r} (known: {', '.join(CHECKERS)})"
                for where, name in checks.items() if name not in CHECKERS]
    if problems:
        return problems
    own = CHECKERS[entry["check"]]
    if own.own is None:
        problems.append(f"checker {entry['check']!r} audits model files only: name it under files")
    problems += [f"check {entry['check']!r} needs field {name!r}" for name in sorted(own.needs - set(entry))]
    on_files = ({entry["kind"]: entry["check"]} if "kind" in entry else {}) | entry.get("files", {})
    problems += [f"checker {name!r} does not audit model files (kind {kind})"
                 for kind, name in on_files.items() if CHECKERS[name].on_file is None]
    return problems


def _claim(entry: Mapping[str, Any], paper: str) -> Claim:
    """The record of a well-formed entry; the checkers it names validate it further."""
    values = dict(entry)
    values["dims"] = {k: str(v) for k, v in values.get("dims", {}).items()}
    values["preconditions"] = tuple(Precondition(p["text"], p.get("check")) for p in values.get("preconditions", ()))
    values["steps"] = tuple(ProofStep(s["text"], dict(s.get("depth", {}))) for s in values.get("steps", ()))
    values["growth"] = tuple(Growth(**{**g, "at": tuple(g["at"])}) for g in values.get("growth", ()))
    claim = Claim(paper=paper, **values)
    for name in {claim.check, *claim.files.values()}:
        if CHECKERS[name].validate is not None:
            CHECKERS[name].validate(claim)
    return claim


def parse(text: str, source: str) -> tuple[Claim, ...]:
    """The claims of one claim file's text; ``source`` names the file in every error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or set(data) != {"paper", "claims"} or not _text(data["paper"]) \
            or not isinstance(data["claims"], list):
        raise ConfigError(f"{source}: expected a mapping with exactly 'paper' (a string) and 'claims' (a list)")
    claims = []
    for number, entry in enumerate(data["claims"], 1):
        name = f"claim {entry['id']}" if isinstance(entry, dict) and _text(entry.get("id")) else f"claim #{number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: {name}: expected a mapping of fields")
        problems = _checked(entry)
        if problems:
            raise ConfigError(f"{source}: {name}: " + "; ".join(problems))
        try:
            claims.append(_claim(entry, data["paper"]))
        except ConfigError as error:
            raise ConfigError(f"{source}: {name}: {error}") from None
    return tuple(claims)


def registry(files: Iterable[tuple[str, str]]) -> tuple[Claim, ...]:
    """The claims of (source, text) pairs in order; an id given twice is refused, naming both files."""
    claims: list[Claim] = []
    seen: dict[str, str] = {}
    for source, text in files:
        for claim in parse(text, source):
            if claim.id in seen:
                raise ConfigError(f"{source}: claim {claim.id}: the id is already given in {seen[claim.id]}")
            seen[claim.id] = source
            claims.append(claim)
    return tuple(claims)


def _package_files() -> list[tuple[str, str]]:
    here = resources.files(__name__)
    return [(f"tc0sim/audit/claims/{name}", (here / name).read_text(encoding="utf-8")) for name in CLAIM_FILES]


CLAIMS: tuple[Claim, ...] = registry(_package_files())

_BY_ID: dict[str, Claim] = {claim.id: claim for claim in CLAIMS}


def get(claim_id: str) -> Claim:
    """Return the claim with this id; an unknown id is a :class:`ConfigError`."""
    try:
        return _BY_ID[claim_id]
    except KeyError:
        raise ConfigError(f"unknown claim {claim_id!r}") from None


__all__ = ["CLAIMS", "CLAIM_FILES", "FIELDS", "Claim", "Precondition", "ProofStep", "SYMBOLS", "VAR_PAPER", "FLOWAR_PAPER",
           "UA_PAPER", "claimed_depth", "get", "parse", "registry"]
