"""The primitive set of the DAG, declared once (docs/dag.md; VAR Definition 3.3 and Lemma 3.5).

Each row says everything that varies by primitive: its name, role and arity, its depth symbol,
its properties, its shape rule, its move rule (wiring) and its F_p kernel (the ``tc0sim.fp``
kernel of the same name). A node holds its row (``Node.prim``, compared by identity, e.g.
``node.prim is PAD``; better, ask a property: ``node.prim.role``, ``node.prim.move``); every
interpreter's rule table (``tc0sim.ir.rules.RuleTable``) is keyed by the row and derived from it.
Names appear only at the edges: ``primitive(name)`` parses one (JSON, the CLI), ``row.name``
prints one. Adding a primitive is one row here plus one F_p kernel; a test adds a throw-away row
with ``scratch_primitive``. See docs/dag.md, "How to add a primitive".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, overload

from tc0sim.errors import GraphError
from tc0sim.ir import moves, shapes
from tc0sim.ir.moves import MoveRule
from tc0sim.ir.shapes import ShapeRule


class Symbols(Sequence[str]):
    """The symbolic gate depths, in the order every depth vector uses.

    It grows only inside ``scratch_primitive`` when the scratch row has a new symbol (and is
    restored when the block ends); every depth vector has ``len(SYMBOLS)`` entries. Compares
    equal to the tuple of its names.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._names: list[str] = list(names)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[str, ...]: ...
    def __getitem__(self, i: int | slice) -> str | tuple[str, ...]:
        return tuple(self._names[i]) if isinstance(i, slice) else self._names[i]

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._names))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Symbols, tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(self._names))


SYMBOLS = Symbols(("d_std", "d_sum", "d_prod", "d_exp", "d_sqrt"))
"""The symbolic gate depths, in the order every depth vector uses: these five, then every other
symbol of the rows below in row order (a row with a new symbol is all it takes)."""

QUIET_SYMBOLS = frozenset({"d_log", "d_trig"})
"""Symbols of the primitives only traced models use (log; sin and cos): a full {symbol: count}
dict (``tc0sim.ir.vectors.to_dict``, the reports' JSON) names them only where they count, so a
report of a circuit without them reads exactly as before they were added; a report of several
vectors names one in all of them once one counts it (``to_dict(v, full=True, also=used(vectors))``)."""

ROLES = ("elementwise", "reduction", "source", "wiring", "structure")
"""Role words: the by-role rule construction (``tc0sim.ir.rules.by_role``) reads them. A
``structure`` row (``call``, ``result``) is no gate and moves no element: it ties a shared body
into the graph, and only the interpreters that read graphs with calls have rules for it."""

ROUNDING = ("rounded", "exact")
"""A compute primitive rounds its exact result once to p bits (``rounded``) or its result is
already an F_p value (``exact``); the generated primitive table of docs/dag.md reads them, and
the tests check each kernel against an exact oracle accordingly."""


@dataclass(frozen=True, eq=False, repr=False)
class Primitive:
    """One primitive: depth symbol (None for wiring), arity (None = variadic), properties, rules.

    ``shape`` computes the output shape, ``move`` (wiring) says where each element comes from,
    ``kernel`` names the ``tc0sim.fp`` kernel that computes its F_p value (None: no value to
    compute, as for wiring that only moves elements).

    Rows compare and hash by identity (as JAX's primitives): there is one object per primitive,
    pickling gives back the defined row of that name, and comparing a row with a name string is a
    TypeError (names belong at the edges: ``row.name``, ``primitive(name)``).
    """

    name: str
    symbol: str | None
    arity: int | None
    properties: frozenset[str]
    doc: str
    shape: ShapeRule | None = None
    move: MoveRule | None = None
    kernel: str | None = None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            raise TypeError(f"compare primitive {self.name!r} with a Primitive (or compare its .name), not with {other!r}")
        return self is other

    __hash__ = object.__hash__

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return primitive, (self.name,)

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"

    def __str__(self) -> str:
        return self.name

    @property
    def is_wiring(self) -> bool:
        """Wiring costs depth 0 and size 0 (docs/dag.md)."""
        return self.symbol is None

    @property
    def role(self) -> str:
        """'source', 'reduction', 'structure', 'wiring' (no depth symbol) or 'elementwise'."""
        for role in ("source", "reduction", "structure"):
            if role in self.properties:
                return role
        return "wiring" if self.is_wiring else "elementwise"

    def check(self) -> None:
        """Refuse an inconsistent row with a GraphError naming the primitive."""
        unknown = self.properties - set(ROLES) - set(ROUNDING)
        problem = (
            f"unknown properties {sorted(unknown)}" if unknown
            else "" if self.role == "structure"
            else "no shape rule" if self.shape is None
            else "wiring without a move rule or a kernel" if self.role == "wiring" and not (self.move or self.kernel)
            else "a compute primitive without an F_p kernel name" if self.role in ("elementwise", "reduction") and not self.kernel
            else "a compute primitive must be exactly one of 'rounded', 'exact'"
            if self.kernel and len(self.properties & set(ROUNDING)) != 1
            else ""
        )
        if problem:
            raise GraphError(f"primitive {self.name!r}: {problem}")


def _props(words: str) -> frozenset[str]:
    return frozenset(words.split())


def elementwise(name: str, symbol: str, arity: int, props: str, doc: str) -> Primitive:
    """A gate per element over equal-shape operands; its F_p kernel has the primitive's name."""
    return Primitive(name, symbol, arity, _props(f"elementwise {props}"), doc, shapes.same_shape, kernel=name)


def reduction(name: str, symbol: str, props: str, doc: str) -> Primitive:
    """One gate of fan-in k per output element (⊕, ⊗ along ``axes``), rounded once."""
    return Primitive(name, symbol, 1, _props(f"reduction {props}"), doc, shapes.reduce_shape, kernel=name)


def source(name: str, doc: str) -> Primitive:
    """A circuit input or constant: depth 0, size 0, shape from its ``shape`` attribute."""
    return Primitive(name, None, 0, _props("wiring source"), doc, shapes.source_shape)


def wiring(name: str, arity: int | None, shape: ShapeRule, move: MoveRule, doc: str) -> Primitive:
    """Data movement: depth 0, size 0; ``move`` says where each element comes from."""
    return Primitive(name, None, arity, _props("wiring"), doc, shape, move)


def structure(name: str, arity: int | None, doc: str) -> Primitive:
    """A node that ties a shared body into the graph (docs/dag.md, "Shared sub-circuits")."""
    return Primitive(name, None, arity, _props("structure"), doc)


ADD = elementwise("add", "d_std", 2, "rounded", "round_p(a + b)")
SUB = elementwise("sub", "d_std", 2, "rounded", "round_p(a - b)")
MUL = elementwise("mul", "d_std", 2, "rounded", "round_p(a * b)")
DIV = elementwise("div", "d_std", 2, "rounded", "round_p(a / b)")
MAX = elementwise("max", "d_std", 2, "exact", "max(a, b)")
MIN = elementwise("min", "d_std", 2, "exact", "min(a, b)")
COMPARE = elementwise("compare", "d_std", 2, "exact", "1 if a < b else 0")
RELU = elementwise("relu", "d_std", 1, "exact", "max(a, 0)")
EXP = elementwise("exp", "d_exp", 1, "rounded", "round_p(e^a)")
SQRT = elementwise("sqrt", "d_sqrt", 1, "rounded", "round_p(sqrt(a))")
ERF = elementwise("erf", "d_erf", 1, "rounded", "round_p(erf(a)), correctly rounded (the exact GELU's error function)")
LOG = elementwise("log", "d_log", 1, "rounded", "round_p(ln a) for a > 0, correctly rounded (traced models: softplus, log-softmax)")
SIN = elementwise("sin", "d_trig", 1, "rounded", "round_p(sin a), correctly rounded (traced models: sinusoidal embeddings of inputs)")
COS = elementwise("cos", "d_trig", 1, "rounded", "round_p(cos a), correctly rounded")
SUM = reduction("sum", "d_sum", "rounded", "round_p(exact sum along axes), one gate per output")
PROD = reduction("prod", "d_prod", "rounded", "round_p(exact product along axes)")
NEG = Primitive("neg", None, 1, _props("elementwise exact wiring"), "-a (sign flip is wiring)",
                shapes.same_shape, moves.same_place, kernel="neg")
INPUT = source("input", "a circuit input or weight, rounded on entry")
CONSTANT = source("constant", "a value fixed when the circuit is built")
RESHAPE = wiring("reshape", 1, shapes.reshape_shape, moves.reshape, "same elements, new shape (row-major)")
TRANSPOSE = wiring("transpose", 1, shapes.transpose_shape, moves.transpose, "permute axes")
SLICE = wiring("slice", 1, shapes.slice_shape, moves.slice_axis, "start:stop:step along one axis")
CONCAT = wiring("concat", None, shapes.concat_shape, moves.concat, "join along one axis")
BROADCAST = wiring("broadcast", 1, shapes.broadcast_to_shape, moves.broadcast, "numpy broadcast_to")
GATHER = wiring("gather", 1, shapes.gather_shape, moves.gather, "numpy take with static indices")
PAD = wiring("pad", 1, shapes.pad_shape, moves.pad, "zero padding")
CALL = structure("call", None, "apply a shared sub-circuit (attr `fn`) to its inputs; shape (), no value of its own")
RESULT = structure("result", 1, "output `index` of the call it reads")

BUILTIN: tuple[Primitive, ...] = (
    ADD, SUB, MUL, DIV, MAX, MIN, COMPARE, RELU, EXP, SQRT, ERF, LOG, SIN, COS, SUM, PROD, NEG,
    INPUT, CONSTANT, RESHAPE, TRANSPOSE, SLICE, CONCAT, BROADCAST, GATHER, PAD, CALL, RESULT,
)
"""The built-in rows, in table order: every rule table derives their rules once, when it is made."""

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in BUILTIN}
"""Every defined primitive by name (the edges' lookup): the built-in rows, and a scratch row
while its ``scratch_primitive`` block runs. Read it; never change it by hand."""

for _row in BUILTIN:
    _row.check()
    if _row.symbol is not None and _row.symbol not in SYMBOLS:
        SYMBOLS._names.append(_row.symbol)  # a row with a new symbol extends the vectors


def primitive(name: str) -> Primitive:
    """Look up a primitive by name (at the edges: JSON, the CLI); an unknown name is a GraphError."""
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise GraphError(f"unknown primitive {name!r}") from None


def is_defined(prim: Primitive) -> bool:
    """True for a built-in row and for a scratch row inside its block."""
    return PRIMITIVES.get(prim.name) is prim


@contextmanager
def scratch_primitive(row: Primitive) -> Iterator[Primitive]:
    """Define ``row`` (and its depth symbol, if new) inside the block only; everything is restored
    on exit, even on error. Rule tables derive the row's rules on each lookup and never keep them
    (``tc0sim.ir.rules.RuleTable``), so nothing of it outlives the block. For tests and
    experiments; a primitive of tc0sim is a row of ``BUILTIN``."""
    row.check()
    if row.name in PRIMITIVES:
        raise GraphError(f"primitive {row.name!r} is already defined")
    added = row.symbol is not None and row.symbol not in SYMBOLS
    PRIMITIVES[row.name] = row
    if added:
        SYMBOLS._names.append(row.symbol)  # type: ignore[arg-type]
    try:
        yield row
    finally:
        del PRIMITIVES[row.name]
        if added:
            SYMBOLS._names.remove(row.symbol)  # type: ignore[arg-type]
