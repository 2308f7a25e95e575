"""Rule tables: every interpreter is a dict from primitive (the ``Primitive`` row) to a rule (JAX-style).

A ``RuleTable`` is derived from the primitive table: ``derive(row)`` gives the rule of a row (or
None). The built-in rows' rules are derived once, when the table is made; a row defined later
(``tc0sim.ir.primitives.scratch_primitive``) is derived on each lookup while it is defined and
never kept, so the tables need no listener. A primitive without a rule is a ``MissingRuleError``
naming the interpreter and the primitive, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from tc0sim.errors import MissingRuleError
from tc0sim.ir.primitives import BUILTIN, Primitive, is_defined

R = TypeVar("R")


class RuleTable(dict, Generic[R]):  # type: ignore[type-arg]
    """An interpreter's rules by primitive row, derived row by row from the primitive table.

    Entries may be set by hand after construction (special cases override the derived rule);
    ``table[prim]`` and ``table.rule(prim)`` raise MissingRuleError(interpreter, name) for a
    primitive without a rule, ``table.get(prim)`` gives None."""

    def __init__(self, interpreter: str, derive: Callable[[Primitive], R | None]) -> None:
        super().__init__()
        self.interpreter = interpreter
        self._derive = derive
        for row in BUILTIN:
            rule = derive(row)
            if rule is not None:
                self[row] = rule

    def __setitem__(self, prim: Primitive, rule: R) -> None:
        if not isinstance(prim, Primitive):
            raise TypeError(f"rule table {self.interpreter!r} is keyed by Primitive rows, not {prim!r}")
        super().__setitem__(prim, rule)

    def __missing__(self, prim: Primitive) -> R:
        if not isinstance(prim, Primitive):
            raise TypeError(f"rule table {self.interpreter!r} is keyed by Primitive rows, not {prim!r}")
        rule = self._derive(prim) if is_defined(prim) and prim not in BUILTIN else None
        if rule is None:
            raise MissingRuleError(self.interpreter, prim.name)
        return rule

    def rule(self, prim: Primitive) -> R:
        """The rule for ``prim``, or MissingRuleError(interpreter, prim.name)."""
        return self[prim]

    def get(self, prim: Primitive, default: R | None = None) -> R | None:  # type: ignore[override]
        """The rule for ``prim``, or ``default`` when it has none."""
        try:
            return self[prim]
        except MissingRuleError:
            return default

    def covers(self, prim: Primitive) -> bool:
        """True when ``prim`` has a rule here (a scratch row: while it is defined)."""
        return self.get(prim) is not None


def by_role(
    source: R, reduction: R, elementwise: R, wiring: R | None = None, interpreter: str = "interpreter"
) -> RuleTable[R]:
    """A rule table from the primitives' roles: sources, reductions, elementwise gates and (given
    ``wiring``) the wiring primitives that move elements; the others (structure rows, wiring
    without a move rule) are left for the interpreter to add one by one."""
    roles = {"source": source, "reduction": reduction, "elementwise": elementwise}

    def derive(row: Primitive) -> R | None:
        if row.role == "wiring":
            return wiring if row.move is not None else None
        return roles.get(row.role)

    return RuleTable(interpreter, derive)
