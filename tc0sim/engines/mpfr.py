"""The reference engine: ``EVAL_RULES`` on object arrays of mpfr values, any precision p.

Inputs and constants are rounded to p bits on entry; every compute node applies one F_p array
operation (gmpy2/MPFR), so every primitive rounds exactly once (VAR Lemma 3.5; docs/semantics.md).
A map read only by a ⊕/⊗, or joined to its further terms (a bias) by a concat the ⊕ alone reads,
is computed with it in pieces (docs/semantics.md §2.5). The fast and
Dask engines hold an ``MpfrRun`` as their fallback and give its bits and errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.engines.base import EvalStats, NamedError, NodeEngine, entry, named
from tc0sim.engines.blocking import (
    PIECE_ELEMENTS, Deferred, MapFailed, defer, fused_maps, is_map, is_reduction, largest_block, map_reduce,
    reduced_axes,
)
from tc0sim.engines.streams import Streams, plan_for
from tc0sim.fp import Format
from tc0sim.ir.exact import constant_value
from tc0sim.ir.graph import Node
from tc0sim.ir.primitives import CONSTANT, Primitive
from tc0sim.ir.rules import RuleTable
from tc0sim.ir.wiring import move

Rule = Callable[[Format, Node, list[np.ndarray]], np.ndarray]


def _map(name: str) -> Rule:
    """``F.map`` in pieces of PIECE_ELEMENTS (the same values and first error): a signal (Ctrl-C)
    is acted on between pieces, not after the whole node, and the lists F.map makes stay small."""
    def rule(F: Format, node: Node, args: list[np.ndarray]) -> np.ndarray:
        try:
            return map_reduce(F, name, None, args, ())
        except MapFailed as e:
            raise e.error from None
    return rule


def _reduce(name: str) -> Rule:
    return lambda F, node, args: F.reduce(name, args[0], node.attrs["axes"])


def _move(F: Format, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return move(node, args, lambda: F.zero)


def _constant(F: Format, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return F.asarray(constant_value(node.attrs["value"]))


def _derive(row: Primitive) -> Rule | None:
    """A primitive with an F_p kernel applies it (elementwise or per reduced row); wiring moves."""
    if row.kernel is not None:
        return _reduce(row.kernel) if row.role == "reduction" else _map(row.kernel)
    return _move if row.move is not None else None


EVAL_RULES: RuleTable[Rule] = RuleTable("evaluate", _derive)
EVAL_RULES[CONSTANT] = _constant
"""One rule per primitive; ``input`` is handled by the node runner itself (it reads the inputs)."""


@dataclass(frozen=True)
class MpfrMemory:
    """The reference engine's memory model (tc0sim.engines.base.Memory)."""

    p: int
    chunk: int | None = None

    value_bytes = 100
    """Bytes of one computed value besides its p/8 bytes of significand (an mpfr object and its
    allocation; 72 bytes at p = 53 and 192 at p = 1000 by sys.getsizeof); each array slot
    referring to it is 8 bytes more."""

    pool_bytes = 0

    def fused(self, live: list[Node], keep: set[int]) -> set[int]:
        """A map read only by a reduction, or joined to its further terms (``joined_feeders``),
        is deferred to it and computed with it in pieces."""
        return fused_maps(live, keep, is_map, is_reduction)

    def streams(self, live: list[Node], keep: set[int]) -> Streams:
        """Large values never held whole (tc0sim.engines.streams), at this model's piece size."""
        return plan_for(live, keep, self.fused(live, keep), self.chunk or PIECE_ELEMENTS)

    def bytes_per_value(self) -> tuple[int, int]:
        return 8, self.value_bytes + self.p // 8

    def work_bytes(self, node: Node, shape: tuple[int, ...], fused: bool, operand_bytes: int,
                   nodes: Mapping[int, Node] | None = None) -> int:
        """F.map and F.reduce flatten each operand to a list and collect the results in one (8
        bytes per element each, plus a flattened copy); a fused reduction does so on one piece at
        a time, whose products are new values (about 170 bytes per element of a piece at p = 24
        by tracemalloc, values included; 80 bytes of lists are counted)."""
        slot, value = self.bytes_per_value()
        if fused:
            piece = largest_block(shape, tuple(node.attrs.get("axes", ())), self.chunk or PIECE_ELEMENTS)
            return piece * (80 + slot + value)
        return 8 * math.prod(shape) * (len(node.inputs) + 2)


class MpfrRun:
    """One evaluation on the reference engine (tc0sim.engines.base.Run)."""

    name = "mpfr"

    def __init__(self, F: Format, stats: EvalStats, chunk_elements: int | None = None) -> None:
        self.F = F
        self.stats = stats
        self.chunk = chunk_elements
        self.memory = MpfrMemory(F.p, chunk_elements)
        self.fused: set[int] = set()

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        self.fused = self.memory.fused(live, keep)

    def entry(self, node: Node, value: Any) -> Any:
        return entry(self.F, node, value)

    def apply(self, node: Node, args: list[Any]) -> Any:
        if node.id in self.fused:
            self.stats.add_gates("mpfr", node)
            return defer(node, args)
        if args and isinstance(args[0], Deferred):
            d = args[0]
            self.stats.add_gates("mpfr", node)
            try:
                return map_reduce(self.F, d.node.prim.kernel, node.prim.kernel, d.args,
                                  reduced_axes(node, d), self.chunk, d.extra)
            except MapFailed as e:
                raise NamedError(named(d.node, e.error)) from None
        return self.rule(node, args)

    def rule(self, node: Node, args: list[Any]) -> Any:
        """``node``'s EVAL_RULES rule on mpfr arrays."""
        rule = EVAL_RULES[node.prim]
        self.stats.add_gates("mpfr", node)
        return rule(self.F, node, args)

    def release(self, value: Any) -> None:
        """A value no node reads any more (nothing to reuse here)."""

    def result(self, value: Any, values: str) -> np.ndarray:
        """The caller's representation: object array of mpfr, (``values="float64"``) float64, or
        (``"native"``) this engine's own arrays (here object arrays of mpfr)."""
        return self.F.to_float64_array(value) if values == "float64" else value

    def close(self) -> None:
        """Nothing to release."""


def _start(F: Format, stats: EvalStats, chunk: int | None, workers: int | None, scheduler: str | None) -> MpfrRun:
    return MpfrRun(F, stats, chunk)


MPFR_RATE = 1e6
"""Gates per second of the reference engine, for the plan's time estimate: 1.8·10^6 on a 24³·2
matmul at p = 53 and 7·10^5 on the official VAE decoder (1.3·10^8 gates in about 3 min), one core
of the 2-core build machine under load; an estimate, not a promise."""

MPFR = NodeEngine("mpfr", _start, MpfrMemory, cluster="mpfr-dask", rate=MPFR_RATE)
"""The reference engine (any p); with workers or a scheduler its work runs on ``mpfr-dask``."""
