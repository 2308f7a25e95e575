"""The build budget: a bound on the tensor nodes and the estimated memory of one graph.

``BudgetedBuilder`` is a Builder that counts what it appends and refuses (``BudgetError``) the
node that would take the graph past ``BuildBudget.max_nodes`` tensor nodes or past
``BuildBudget.max_bytes`` estimated bytes. The estimate is ``NODE_BYTES`` per node plus the
arrays a node holds (gather indices at their numpy size, exact constants at
``CONSTANT_ELEMENT_BYTES`` per element). An operator that computes an index or constant array
before handing it to the builder calls ``b.reserve(elements, bytes_each, what)`` first, so a
huge array is refused before it is allocated. A kind may also declare ``estimate(dims, params)``,
lower bounds on its nodes and bytes (see ``tc0sim.ir.kind``), which are checked before anything is built.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.errors import BudgetError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES

NODE_BYTES = 700
"""Estimated bytes of one tensor node with its scope and attributes (measured: ~670 on CPython 3.11)."""

CONSTANT_ELEMENT_BYTES = 200
"""Estimated bytes of one element of an exact constant (a Fraction in an object array)."""

INDEX_BYTES = 8
"""Bytes of one gather index (int64)."""


@dataclass(frozen=True)
class BuildBudget:
    """Largest graph a build may produce: ``max_nodes`` tensor nodes and ``max_bytes`` estimated bytes."""

    max_nodes: int = DEFAULT_MAX_NODES
    max_bytes: int = DEFAULT_MAX_BYTES

    def refuse_nodes(self, count: int, what: str) -> BudgetError:
        return BudgetError(
            f"{what} has more than {self.max_nodes:,} tensor nodes (at least {count:,}), "
            "above the build budget; raise it with --max-nodes"
        )

    def refuse_bytes(self, count: int, what: str) -> BudgetError:
        return BudgetError(
            f"{what} needs about {count:,} bytes, above the build budget of {self.max_bytes:,} bytes; "
            "raise it with --max-memory"
        )


def _array_bytes(value: Any) -> int:
    if not isinstance(value, np.ndarray):
        return 0
    return value.size * (CONSTANT_ELEMENT_BYTES if value.dtype == object else value.itemsize)


class BudgetedBuilder(Builder):
    """A Builder that refuses to grow past its ``BuildBudget``."""

    def __init__(self, budget: BuildBudget, label: str = "the graph", share: bool = False) -> None:
        super().__init__(share)
        self.budget = budget
        self.label = label
        self.bytes = 0
        self.nodes = 0
        """Nodes and bytes built so far, shared bodies included (kept on the root builder)."""
        self.root = self
        self._charged: dict[int, np.ndarray] = {}
        """Attribute arrays already counted, by identity (kept alive here so an id is not reused):
        an array that several nodes share, such as a cached gather index, is held once."""

    def child(self) -> Builder:
        """A shared body's builder: its nodes and bytes count against this builder's budget."""
        sub = BudgetedBuilder(self.budget, self.label, share=True)
        sub._constants, sub._functions, sub.root = self._constants, self._functions, self.root
        return sub

    def reserve(self, elements: int, bytes_each: int, what: str) -> None:
        """Refuse now if an array of ``elements`` elements would take the graph past the budget."""
        wanted = self.root.bytes + elements * bytes_each
        if wanted > self.budget.max_bytes:
            raise self.budget.refuse_bytes(wanted, f"{self.label} ({what})")

    def node(self, prim: str, inputs: Sequence[Tensor], name: str | None = None, **attrs: Any) -> Tensor:
        charged = self.root._charged
        new = {id(v): v for v in attrs.values() if isinstance(v, np.ndarray) and id(v) not in charged}
        self._charge(NODE_BYTES + sum(_array_bytes(v) for v in new.values()))
        charged.update(new)
        return super().node(prim, inputs, name, **attrs)

    def _append(self, prim: str, shape: tuple[int, ...], inputs: tuple[int, ...], attrs: dict[str, Any], name: str | None) -> int:
        self._charge(NODE_BYTES)  # a call or result node
        return super()._append(prim, shape, inputs, attrs, name)

    def _charge(self, cost: int) -> None:
        """Count one more node of ``cost`` bytes (on the root builder), or refuse it."""
        root = self.root
        if root.nodes >= self.budget.max_nodes:
            raise self.budget.refuse_nodes(root.nodes + 1, self.label)
        if root.bytes + cost > self.budget.max_bytes:
            raise self.budget.refuse_bytes(root.bytes + cost, self.label)
        root.bytes += cost
        root.nodes += 1


def repeat_count(value: Any) -> int:
    """How many times a repetition param repeats (an int, or a list's length); 1 for anything else.

    Used by the ``var`` kind's ``estimate`` on its ``scales`` (a count or a list), so it never raises.
    """
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return max(value, 1)
    if isinstance(value, (list, tuple)):
        return max(len(value), 1)
    return 1


_ACTIVE: ContextVar[BuildBudget | None] = ContextVar("tc0sim_build_budget", default=None)


@contextmanager
def budget_scope(budget: BuildBudget) -> Iterator[BuildBudget]:
    """Every build inside the ``with`` block that names no budget of its own uses ``budget``."""
    token = _ACTIVE.set(budget)
    try:
        yield budget
    finally:
        _ACTIVE.reset(token)


def active_budget() -> BuildBudget | None:
    """The budget of the innermost ``budget_scope``, or None (no limit) outside any."""
    return _ACTIVE.get()
