"""The audit's records: a claim of a paper, a way of checking it, and its verdict.

A claim is data (loaded by ``tc0sim.audit.claims`` from the YAML files beside it); its ``check``
names the entry of ``tc0sim.audit.checkers.CHECKERS`` that audits it. The verdicts are those of
the module docstring of ``tc0sim.audit.audit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import Vec, as_vec, from_dict, zero
from tc0sim.ir.vectors import fmt as fmt_vec
from tc0sim.kinds import get_kind


@dataclass(frozen=True)
class ProofStep:
    """One step of a proof, with its depth as the proof states it (none for a claim stating no depth)."""

    text: str
    depth: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Precondition:
    """One assumption of a claim; ``check`` is machine-checkable or None."""

    text: str
    check: str | None


@dataclass(frozen=True)
class Growth:
    """A quantity an O(1) claim's instances hold fixed, and the values its depth is measured at.

    ``param`` or ``dim`` names what varies (a param or a dim of the claim's kind), ``at`` its values (the
    first two fit the growth per added unit, the rest verify it), ``n`` the size the kind is built at.
    """

    quantity: str
    at: tuple[int, ...]
    n: int
    param: str | None = None
    dim: str | None = None


NATURES = frozenset({"bound", "existence", "construction"})
"""What a measured claim states: a bound to test, an existence statement (a measurement cannot decide
it), or a bound its own hypotheses guarantee by construction (a measurement can only find a bug)."""


@dataclass(frozen=True)
class Claim:
    """One lemma, proposition or theorem of one of the papers, with its depth and size claims.

    ``check`` names the checker (``tc0sim.audit.checkers.CHECKERS``) that audits the claim at its own
    instances; every other field but the identification and the statement has the default of a claim
    that states nothing of that sort. ``fixed``: for a runtime claim, ``kind`` is a proxy whose
    operation count is fitted in n, and ``fixed`` says what is held fixed. ``measure``: for an approx
    claim, the measurement of ``tc0sim.audit.approx_checks.MEASURES``. ``files``: further model-file
    kinds the claim is audited on, each with its checker (see :meth:`on_files`).
    """

    id: str
    paper: str
    ref: str
    title: str
    statement: str
    check: str
    depth: dict[str, int] | None = None
    depth_o1: bool = False
    size: str = ""
    size_degree: int | None = None
    runtime: str = ""
    preconditions: tuple[Precondition, ...] = ()
    steps: tuple[ProofStep, ...] = ()
    kind: str | None = None
    dims: dict[str, str] = field(default_factory=dict)
    unchecked: str | None = None
    note: str = ""
    fixed: str = ""
    measure: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    nature: str = "bound"
    growth: tuple[Growth, ...] = ()

    def __post_init__(self) -> None:
        """Schema check: known depth symbols with positive counts, and a kind for every sweep."""
        stated = self.depth is not None or self.depth_o1
        for vector in ([self.depth] if self.depth is not None else []) + [s.depth for s in self.steps if s.depth or stated]:
            bad = [k for k, c in vector.items() if k not in SYMBOLS or not isinstance(c, int) or c < 1]
            if bad or not vector:
                raise ConfigError(f"claim {self.id}: depth {vector!r} needs positive counts of {', '.join(SYMBOLS)}")
        if self.dims and self.kind is None:
            raise ConfigError(f"claim {self.id}: dims without a kind to build")
        if self.nature not in NATURES:
            raise ConfigError(f"claim {self.id}: nature {self.nature!r} is not one of {', '.join(sorted(NATURES))}")
        if self.growth and (self.kind is None or not self.depth_o1):
            raise ConfigError(f"claim {self.id}: growth is measured for an O(1) depth claim with a kind")
        for g in self.growth:
            if (g.param is None) == (g.dim is None) or len(g.at) < 3:
                raise ConfigError(f"claim {self.id}: growth {g.quantity!r} needs one of param or dim and at least 3 values")

    def on_files(self) -> dict[str, str]:
        """Model-file kind → checker name: the claim's own kind by its own check, then ``files``."""
        return ({self.kind: self.check} if self.kind is not None else {}) | dict(self.files)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields ``tc0sim claims --format json`` shows, preconditions and steps as dicts."""
        full = asdict(self)
        full["preconditions"], full["steps"] = list(full["preconditions"]), list(full["steps"])
        return {key: full[key] for key in _SHOWN}


_SHOWN = ("id", "paper", "ref", "title", "statement", "depth", "depth_o1", "size", "kind", "dims", "preconditions", "steps", "unchecked", "note")
"""The fields of ``Claim.as_dict``, in order."""


def claimed_depth(claim: Claim) -> str | None:
    """The depth a claim states, as every report writes it: its linear form, 'O(1)', or None."""
    if claim.depth is not None:
        return fmt_vec(from_dict(claim.depth))
    return "O(1)" if claim.depth_o1 else None


@dataclass
class Verdict:
    """The audit of one claim: verdict, claimed and computed depth, notes, slack and path.

    ``hypotheses``: each precondition with its status on the audited instances; ``held_fixed``: what
    the instances hold fixed; ``growth``: for an O(1) verdict, the depth per added unit of each held
    quantity; ``corrected``: for ``violated as printed``, the corrected reading and its verdict;
    ``scope``: what the verdict is about when it is less than the claim (e.g. a runtime exponent).
    """

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
    hypotheses: list[dict[str, str]] = field(default_factory=list)
    held_fixed: list[str] = field(default_factory=list)
    growth: list[dict[str, Any]] = field(default_factory=list)
    corrected: dict[str, str] | None = None
    scope: str = ""

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
            "scope": self.scope,
            "corrected": self.corrected,
            "hypotheses": list(self.hypotheses),
            "held_fixed": list(self.held_fixed),
            "growth": list(self.growth),
        }


@dataclass(frozen=True)
class Check:
    """A measurement's verdict, claimed and computed text and notes (``tc0sim.audit.approx_checks``);
    ``corrected``: for a claim false as printed, the corrected reading and its verdict ({"reading", "verdict"});
    ``statuses``: the status of hypotheses (by the precondition's text) the measurement decides."""

    verdict: str
    claimed: str
    computed: str
    notes: list[str]
    corrected: dict[str, str] | None = None
    statuses: dict[str, str] = field(default_factory=dict)


OwnCheck = Callable[[Claim, Sequence[int], "int | None"], Verdict]
"""Audit one claim at its own instances: (claim, the n sweep, gates_p) → verdict."""

FileCheck = Callable[[Sequence[Claim], Any, "Sequence[int] | None", "int | None"], list[Verdict]]
"""Audit claims on a model file: (claims, the file's ModelSpec, the n sweep or None, gates_p) → verdicts."""


@dataclass(frozen=True)
class Checker:
    """One way of checking a claim (one module of ``tc0sim.audit.checkers``).

    ``needs``: the claim fields it reads, required at load; ``own``: the audit at the claim's own
    instances (None: only on model files); ``on_file``: the audit on a model file (None: never on
    one); ``validate``: further checks of a claim at load, raising ConfigError.
    """

    needs: frozenset[str]
    own: OwnCheck | None
    on_file: FileCheck | None
    validate: Callable[[Claim], None] | None = None


def claimed_text(claim: Claim) -> str:
    """The 'claimed' column: the stated depth, else the runtime, else the size claim."""
    if claim.runtime and claimed_depth(claim) is None:
        return f"runtime {claim.runtime}"
    return claimed_depth(claim) or claim.size or "—"


def steps_total(claim: Claim) -> Vec | None:
    """The sum of the depths of the proof's steps (None when no step states a depth)."""
    steps = [s for s in claim.steps if s.depth]
    if not steps:
        return None
    total = zero()
    for step in steps:
        total = tuple(a + b for a, b in zip(total, as_vec(step.depth)))  # type: ignore[assignment]
    return total


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


def hypothesis(text: str, check: str | None, status: str) -> dict[str, str]:
    """One hypothesis of a verdict: the precondition, its machine check (or empty) and its status."""
    return {"text": text, "check": check or "", "status": status}


UNDECIDED = "not machine-checkable"
"""The status of a precondition no instance can decide (an asymptotic or existential hypothesis)."""


def _held_fixed(claim: Claim, verdict: Verdict) -> list[str]:
    """What the claim's own instances hold fixed: constant dims, the kind's default params, the n range."""
    out = [f"{k} = {t}" for k, t in claim.dims.items() if "n" not in str(t)]
    if claim.kind is not None:
        kind = get_kind(claim.kind)
        defaults = kind.defaults
        out += [f"{k} = {v}" for k, v in dict(defaults).items()]
    if verdict.ns:
        out.append(f"n ∈ {{{', '.join(map(str, verdict.ns))}}}")
    if claim.fixed:
        out.append(claim.fixed)
    return out


def finish(claim: Claim, verdict: Verdict) -> Verdict:
    """The verdict with the note on the proof's steps, its hypotheses and what was held fixed (every
    checker's verdict ends here; a checker that set them keeps its own)."""
    note = _steps_note(claim)
    if note:
        verdict.notes.append(note)
    if not verdict.hypotheses:
        verdict.hypotheses = [hypothesis(p.text, p.check, UNDECIDED if p.check is None else "not evaluated")
                              for p in claim.preconditions]
    if not verdict.held_fixed:
        verdict.held_fixed = _held_fixed(claim, verdict)
    return verdict
