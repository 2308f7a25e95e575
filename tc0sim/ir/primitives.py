"""The primitive set of the DAG, declared once (SPEC §2; seed 004 Definition 3.3 and Lemma 3.5).

Every interpreter (shape, depth, size, evaluate, expand, export) is a rule table keyed by the
names declared here. Algebraic and accounting properties are data, not code.
"""

from __future__ import annotations

from dataclasses import dataclass

SYMBOLS: tuple[str, ...] = ("d_std", "d_sum", "d_prod", "d_exp", "d_sqrt", "d_erf")
"""The symbolic gate depths, in the order every depth vector uses."""


@dataclass(frozen=True)
class Primitive:
    """One primitive: its depth symbol (None for wiring), arity (None = variadic) and properties."""

    name: str
    symbol: str | None
    arity: int | None
    properties: frozenset[str]
    doc: str

    @property
    def is_wiring(self) -> bool:
        """Wiring costs depth 0 and size 0 (SPEC §2)."""
        return self.symbol is None


def _p(name: str, symbol: str | None, arity: int | None, props: str, doc: str) -> Primitive:
    return Primitive(name, symbol, arity, frozenset(props.split()), doc)


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        _p("add", "d_std", 2, "elementwise rounded commutative", "round_p(a + b)"),
        _p("sub", "d_std", 2, "elementwise rounded", "round_p(a - b)"),
        _p("mul", "d_std", 2, "elementwise rounded commutative", "round_p(a * b)"),
        _p("div", "d_std", 2, "elementwise rounded", "round_p(a / b)"),
        _p("max", "d_std", 2, "elementwise exact commutative", "max(a, b)"),
        _p("min", "d_std", 2, "elementwise exact commutative", "min(a, b)"),
        _p("compare", "d_std", 2, "elementwise exact", "1 if a < b else 0"),
        _p("relu", "d_std", 1, "elementwise exact", "max(a, 0)"),
        _p("exp", "d_exp", 1, "elementwise rounded", "round_p(e^a)"),
        _p("sqrt", "d_sqrt", 1, "elementwise rounded", "round_p(sqrt(a))"),
        _p("erf", "d_erf", 1, "elementwise rounded", "round_p(erf(a)), correctly rounded (the exact GELU's error function)"),
        _p("sum", "d_sum", 1, "reduction rounded", "round_p(exact sum along axes), one gate per output"),
        _p("prod", "d_prod", 1, "reduction rounded", "round_p(exact product along axes)"),
        _p("neg", None, 1, "elementwise exact wiring", "-a (sign flip is wiring)"),
        _p("input", None, 0, "wiring source", "a circuit input or weight, rounded on entry"),
        _p("constant", None, 0, "wiring source", "a value fixed when the circuit is built"),
        _p("reshape", None, 1, "wiring", "same elements, new shape (row-major)"),
        _p("transpose", None, 1, "wiring", "permute axes"),
        _p("slice", None, 1, "wiring", "start:stop:step along one axis"),
        _p("concat", None, None, "wiring", "join along one axis"),
        _p("broadcast", None, 1, "wiring", "numpy broadcast_to"),
        _p("gather", None, 1, "wiring", "numpy take with static indices"),
        _p("pad", None, 1, "wiring", "zero padding"),
    )
}


def primitive(name: str) -> Primitive:
    """Look up a primitive by name; an unknown name is a GraphError."""
    from tc0sim.errors import GraphError

    try:
        return PRIMITIVES[name]
    except KeyError:
        raise GraphError(f"unknown primitive {name!r}") from None
