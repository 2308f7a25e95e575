"""The primitive set of the DAG, declared once (docs/dag.md; VAR Definition 3.3 and Lemma 3.5).

Each row of ``PRIMITIVES`` says everything that varies by primitive: its name, role and arity,
its depth symbol, its properties, its shape rule, its move rule (wiring) and its F_p kernel
(the ``tc0sim.fp`` kernel of the same name). Every interpreter's rule table
(``tc0sim.ir.rules.RuleTable``), the Builder's methods and the depth vectors' length are derived
from these rows. Adding a primitive is one row here (or one ``define`` call) plus one F_p kernel;
see docs/dag.md, "How to add a primitive".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from tc0sim.errors import GraphError
from tc0sim.ir import moves, shapes
from tc0sim.ir.moves import MoveRule
from tc0sim.ir.shapes import ShapeRule


class Symbols(Sequence[str]):
    """The symbolic gate depths, in the order every depth vector uses.

    It grows only when ``define`` adds a primitive with a new symbol (and shrinks when
    ``undefine`` removes the last primitive of an added symbol); every depth vector has
    ``len(SYMBOLS)`` entries. Compares equal to the tuple of its names.
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

ROLES = ("elementwise", "reduction", "source", "wiring")
"""Role words: the by-role rule construction (``tc0sim.ir.rules.by_role``) reads them."""

ROUNDING = ("rounded", "exact")
"""A compute primitive rounds its exact result once to p bits (``rounded``) or its result is
already an F_p value (``exact``); the generated primitive table of docs/dag.md reads them, and
the tests check each kernel against an exact oracle accordingly."""


@dataclass(frozen=True)
class Primitive:
    """One primitive: depth symbol (None for wiring), arity (None = variadic), properties, rules.

    ``shape`` computes the output shape, ``move`` (wiring) says where each element comes from,
    ``kernel`` names the ``tc0sim.fp`` kernel that computes its F_p value (None: no value to
    compute, as for wiring that only moves elements).
    """

    name: str
    symbol: str | None
    arity: int | None
    properties: frozenset[str]
    doc: str
    shape: ShapeRule | None = None
    move: MoveRule | None = None
    kernel: str | None = None

    @property
    def is_wiring(self) -> bool:
        """Wiring costs depth 0 and size 0 (docs/dag.md)."""
        return self.symbol is None

    @property
    def role(self) -> str:
        """'source', 'reduction', 'wiring' (no depth symbol) or 'elementwise'."""
        for role in ("source", "reduction"):
            if role in self.properties:
                return role
        return "wiring" if self.is_wiring else "elementwise"

    def check(self) -> None:
        """Refuse an inconsistent row with a GraphError naming the primitive."""
        unknown = self.properties - set(ROLES) - set(ROUNDING)
        problem = (
            f"unknown properties {sorted(unknown)}" if unknown
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


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        elementwise("add", "d_std", 2, "rounded", "round_p(a + b)"),
        elementwise("sub", "d_std", 2, "rounded", "round_p(a - b)"),
        elementwise("mul", "d_std", 2, "rounded", "round_p(a * b)"),
        elementwise("div", "d_std", 2, "rounded", "round_p(a / b)"),
        elementwise("max", "d_std", 2, "exact", "max(a, b)"),
        elementwise("min", "d_std", 2, "exact", "min(a, b)"),
        elementwise("compare", "d_std", 2, "exact", "1 if a < b else 0"),
        elementwise("relu", "d_std", 1, "exact", "max(a, 0)"),
        elementwise("exp", "d_exp", 1, "rounded", "round_p(e^a)"),
        elementwise("sqrt", "d_sqrt", 1, "rounded", "round_p(sqrt(a))"),
        elementwise("erf", "d_erf", 1, "rounded", "round_p(erf(a)), correctly rounded (the exact GELU's error function)"),
        elementwise("log", "d_log", 1, "rounded", "round_p(ln a) for a > 0, correctly rounded (traced models: softplus, log-softmax)"),
        elementwise("sin", "d_trig", 1, "rounded", "round_p(sin a), correctly rounded (traced models: sinusoidal embeddings of inputs)"),
        elementwise("cos", "d_trig", 1, "rounded", "round_p(cos a), correctly rounded"),
        reduction("sum", "d_sum", "rounded", "round_p(exact sum along axes), one gate per output"),
        reduction("prod", "d_prod", "rounded", "round_p(exact product along axes)"),
        Primitive("neg", None, 1, _props("elementwise exact wiring"), "-a (sign flip is wiring)",
                  shapes.same_shape, moves.same_place, kernel="neg"),
        source("input", "a circuit input or weight, rounded on entry"),
        source("constant", "a value fixed when the circuit is built"),
        wiring("reshape", 1, shapes.reshape_shape, moves.reshape, "same elements, new shape (row-major)"),
        wiring("transpose", 1, shapes.transpose_shape, moves.transpose, "permute axes"),
        wiring("slice", 1, shapes.slice_shape, moves.slice_axis, "start:stop:step along one axis"),
        wiring("concat", None, shapes.concat_shape, moves.concat, "join along one axis"),
        wiring("broadcast", 1, shapes.broadcast_to_shape, moves.broadcast, "numpy broadcast_to"),
        wiring("gather", 1, shapes.gather_shape, moves.gather, "numpy take with static indices"),
        wiring("pad", 1, shapes.pad_shape, moves.pad, "zero padding"),
    )
}
"""Every primitive by name. Change it only through ``define`` / ``undefine``."""

for _row in PRIMITIVES.values():
    _row.check()
    if _row.symbol is not None and _row.symbol not in SYMBOLS:
        SYMBOLS._names.append(_row.symbol)  # a row with a new symbol extends the vectors

Listener = Callable[[str, "Primitive | None"], None]
_LISTENERS: list[Listener] = []


def watch(listener: Listener) -> None:
    """Call ``listener(name, row)`` after ``define`` (row) and ``undefine`` (None)."""
    _LISTENERS.append(listener)


def define(prim: Primitive) -> Primitive:
    """Add a primitive (and its depth symbol, if new) to the table; every derived table learns it."""
    prim.check()
    if prim.name in PRIMITIVES:
        raise GraphError(f"primitive {prim.name!r} is already defined")
    if prim.symbol is not None and prim.symbol not in SYMBOLS:
        SYMBOLS._names.append(prim.symbol)
    PRIMITIVES[prim.name] = prim
    for listener in _LISTENERS:
        listener(prim.name, prim)
    return prim


def undefine(name: str) -> None:
    """Remove a primitive added by ``define`` (its symbol too, when no other primitive has it)."""
    prim = primitive(name)
    del PRIMITIVES[name]
    if prim.symbol is not None and all(p.symbol != prim.symbol for p in PRIMITIVES.values()):
        SYMBOLS._names.remove(prim.symbol)
    for listener in _LISTENERS:
        listener(name, None)


def primitive(name: str) -> Primitive:
    """Look up a primitive by name; an unknown name is a GraphError."""
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise GraphError(f"unknown primitive {name!r}") from None
