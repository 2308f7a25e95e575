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
