"""Rule tables: every interpreter is a dict from primitive name to a rule (JAX-style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tc0sim.errors import MissingRuleError

R = TypeVar("R", bound=Callable)


def rule_for(table: dict[str, R], interpreter: str, prim: str) -> R:
    """The rule of ``interpreter`` for ``prim``; a missing rule is an error naming both."""
    try:
        return table[prim]
    except KeyError:
        raise MissingRuleError(interpreter, prim) from None


def by_role(source: R, reduction: R, elementwise: R) -> dict[str, R]:
    """A rule table from the primitives' properties: sources, reductions and elementwise gates;
    the other wiring primitives are left for the interpreter to add one by one."""
    from tc0sim.ir.primitives import PRIMITIVES

    table: dict[str, R] = {}
    for name, prim in PRIMITIVES.items():
        if "source" in prim.properties:
            table[name] = source
        elif "reduction" in prim.properties:
            table[name] = reduction
        elif not prim.is_wiring:
            table[name] = elementwise
    return table
