"""Rule tables for the interpreters; they live in ``tc0sim.ir.rules`` (the IR's wiring uses them too)."""

from tc0sim.ir.rules import RuleTable, by_role

__all__ = ["RuleTable", "by_role"]
