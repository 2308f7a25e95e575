"""Rule tables: every interpreter is a dict from primitive name to a rule (JAX-style).

A ``RuleTable`` is derived from the primitive table: ``derive(row)`` gives the rule of a row (or
None). It learns primitives added later by ``tc0sim.ir.primitives.define``; a name without a rule
is a ``MissingRuleError`` naming the interpreter and the primitive, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from tc0sim.errors import MissingRuleError
from tc0sim.ir.primitives import PRIMITIVES, Primitive, watch

R = TypeVar("R")


def rule_for(table: dict[str, R], interpreter: str, prim: str) -> R:
    """The rule of ``interpreter`` for ``prim``; a missing rule is an error naming both."""
    try:
        return table[prim]
    except KeyError:
        raise MissingRuleError(interpreter, prim) from None


class RuleTable(dict, Generic[R]):  # type: ignore[type-arg]
    """An interpreter's rules by primitive name, derived row by row from the primitive table.

    Entries may be set by hand after construction (special cases override the derived rule).
    """

    def __init__(self, interpreter: str, derive: Callable[[Primitive], R | None]) -> None:
        super().__init__()
        self.interpreter = interpreter
        self._derive = derive
        for row in PRIMITIVES.values():
            self._learn(row)
        watch(self._changed)

    def _learn(self, row: Primitive) -> None:
        rule = self._derive(row)
        if rule is not None:
            self[row.name] = rule

    def _changed(self, name: str, row: Primitive | None) -> None:
        if row is None:
            self.pop(name, None)
        else:
            self._learn(row)

    def rule(self, prim: str) -> R:
        """The rule for ``prim``, or MissingRuleError(interpreter, prim)."""
        return rule_for(self, self.interpreter, prim)


def by_role(
    source: R, reduction: R, elementwise: R, wiring: R | None = None, interpreter: str = "interpreter"
) -> RuleTable[R]:
    """A rule table from the primitives' roles: sources, reductions, elementwise gates and (given
    ``wiring``) the wiring primitives that move elements; the others are left for the interpreter
    to add one by one."""
    roles = {"source": source, "reduction": reduction, "elementwise": elementwise}

    def derive(row: Primitive) -> R | None:
        if row.role == "wiring":
            return wiring if row.move is not None else None
        return roles[row.role]

    return RuleTable(interpreter, derive)
