"""The fast engine: F_p (p <= 53) on float64 arrays, same bits as the reference engine.

A node's value is a float64 array holding F_p values exactly, or (after an excursion outside
binary64's normal range, p >= 10) an object array of mpfr values, which is converted back to
float64 as soon as it fits. Kernels compute each primitive in binary64 and round once
(tc0sim.fastfp for p <= 25; tc0sim.fastfp_dd for 26 <= p <= 53, by the ``Wide`` steps; the run's
class per precision is ``VARIANTS``); elements without a proof or certificate are recomputed by
MPFR, whose errors are raised unchanged. What the engine knows of each primitive is its entry in
``FAST_RULES``; a primitive without one is evaluated by the reference engine (an ``MpfrRun`` the run holds as its fallback).

An elementwise node whose only consumer is a ⊕/⊗ (e.g. the products of a matmul), or which a
concat joins to the ⊕'s further terms (a bias), is not held whole: it is evaluated with the
reduction in blocks of at most ``chunk_elements`` elements.
"""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gmpy2
import numpy as np

from tc0sim.engines.base import EvalStats, NamedError, NodeEngine, named
from tc0sim.engines.blocking import Deferred, defer, join_terms
from tc0sim.engines.fast import pool
from tc0sim.engines.fast.maps import MAX_FLOAT, MIN_NORMAL, Maps
from tc0sim.engines.fast.memory import _MEMORY, FastMemory, buffer, compiled_worthwhile, keep_freed_pages, release
from tc0sim import fastfp, fastfp_dd
from tc0sim.engines.fast.reduce import Reductions
from tc0sim.engines.fast.rules import CONSTANT, FAST_RULES, MAPS, MOVE, REDUCTIONS, UNKNOWN, FastRule, Range, range_of
from tc0sim.engines.fast.wide import Wide
from tc0sim.engines.mpfr import MpfrRun
from tc0sim.fastfp import Kernels, magnitude_range
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.ir.exact import constant_value
from tc0sim.ir.graph import Node
from tc0sim.ir.wiring import move


class FastRun(Maps, Reductions):
    """One evaluation: binary64 kernels where proven or certified, MPFR elsewhere (same bits)."""

    name = "fast"
    kernels: Callable[[int], Any] = Kernels
    """The kernels of one precision (tc0sim.fastfp.Kernels: p <= 25)."""

    def __init__(self, F: Format, stats: EvalStats, chunk_elements: int | None = None) -> None:
        self.F = F
        self.stats = stats
        self.memory = FastMemory(F.p, chunk_elements)
        keep_freed_pages()
        self.chunk = self.memory.block
        self.split_min = self.memory.split_min
        self.fallback = MpfrRun(F, stats, self.chunk)
        self.fused: set[int] = set()
        self.compiled = fastfp.supports(F.p)
        """Whether the optional compiled kernels of p <= 25 (jit_dot, jit_sum) run; prepare() decides
        for the graph (memory.compiled_worthwhile)."""
        self.K = self.kernels(F.p)
        self._mp = lambda v: gmpy2.mpfr(v, F.p)
        self.ranges: dict[int, Range] = {}

    release = staticmethod(release)

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        self.nodes = {node.id: node for node in live}
        self.fused = self.memory.fused(live, keep)
        self.compiled = fastfp.supports(self.F.p) and compiled_worthwhile(live)

    def rule(self, node: Node, args: list[Any]) -> Any:
        """The reference engine's rule (on mpfr arrays)."""
        return self.fallback.rule(node, args)

    def close(self) -> None:
        """Nothing to release (the work arrays and pool stay for the next evaluation)."""

    @contextlib.contextmanager
    def scratch(self) -> Iterator[None]:
        """Bounds learnt on a block of rows (tc0sim.engines.streams) are that block's: forgotten after it."""
        whole = self.ranges
        self.ranges = collections.ChainMap({}, whole)  # type: ignore[assignment]
        try:
            yield
        finally:
            self.ranges = whole

    def stack(self, node: Node, parts: list[Any]) -> Any:
        """A streamed exit's value from its blocks of rows, its bounds measured on the whole."""
        if all(p.dtype != object for p in parts):
            return self._record(node, np.concatenate(parts))
        return self._record(node, self.floats_or_objects(np.concatenate([self.objects(p) for p in parts])))

    # --- representations ---------------------------------------------------------------------

    def objects(self, value: Any) -> np.ndarray:
        """An object array of mpfr values (exact) for any value of this engine."""
        if isinstance(value, Deferred):
            value = self._materialize(value)
        if value.dtype == object:
            return value
        return self.F.asarray(value)

    def floats_or_objects(self, value: np.ndarray) -> np.ndarray:
        """A float64 array with the same values if every element fits binary64's normal range."""
        if value.dtype != object:
            return value
        flat = value.ravel()
        floats = np.array(flat.tolist(), dtype=np.float64)
        a = np.abs(floats)
        zero = a == 0
        if not (zero | ((a >= MIN_NORMAL) & (a <= MAX_FLOAT))).all():
            return value
        if not all(flat[i] == 0 for i in np.flatnonzero(zero).tolist()):
            return value
        return floats.reshape(value.shape)

    def result(self, value: Any, values: str) -> np.ndarray:
        if values == "native" or (values == "float64" and value.dtype != object):
            return value
        return self.fallback.result(self.objects(value), values)

    def entry(self, node: Node, value: Any) -> Any:
        arr = value if isinstance(value, np.ndarray) else None
        if arr is not None and arr.shape == node.shape and arr.dtype.kind in "fiub" and arr.dtype.itemsize <= 8:
            if arr.dtype == np.float64 and arr.size:
                bounds = magnitude_range(arr)
                if self.K.magnitudes_safe(bounds[0], bounds[1]):
                    return self._record(node, self._round_safe_copy(arr), self._rounded_range(bounds))
            x = arr.astype(np.float64)
            exact = arr.dtype.kind == "f" or not arr.size or np.abs(arr).max() <= 2**53
            if exact and np.isfinite(x).all():
                r, flagged = self._round_entry(np.ascontiguousarray(x))
                flat = r.reshape(-1)
                extras: dict[int, Any] = {}
                for i in flagged.tolist():
                    try:
                        self._store(flat, extras, i, self.F.round(arr.flat[i].item()))
                    except FpArithmeticError as e:
                        raise type(e)(f"input {node.name!r}: {e}") from None
                self.stats.recomputed += len(flagged)
                return self._record(node, self._with_extras(r, extras))
        return self._record(node, self.floats_or_objects(self.fallback.entry(node, value)))

    def _round_entry(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exact float64 values r rounded to p bits in place, by blocks, and the flat indices
        of the elements MPFR must round (non-zero, and not an in-range F_p value after rounding)."""
        flat = r.reshape(-1)

        def part(begin: int, end: int) -> list[np.ndarray]:
            work = buffer("bits", (min(self.chunk, end - begin),), np.int64)
            found = []
            for start in range(begin, end, self.chunk):
                piece = flat[start:min(start + self.chunk, end)]
                nonzero = piece != 0  # before rounding: a subnormal may round to 0
                piece = self.K.round_inplace(piece, work[: piece.size])
                found.append(np.flatnonzero(~self.K.in_range(piece) & nonzero) + start)
            return found

        parts = [found for half in self._in_halves(flat.size, part) for found in half]
        return r, (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))

    def _round_safe_copy(self, x: np.ndarray) -> np.ndarray:
        """x (float64, every non-zero |x| proved safe) rounded to p bits into a new array, by blocks."""
        src = np.ascontiguousarray(x).reshape(-1)
        out = _MEMORY.output(src.shape)

        def part(begin: int, end: int) -> None:
            work = buffer("bits", (min(self.chunk, end - begin),), np.int64)
            for start in range(begin, end, self.chunk):
                stop = min(start + self.chunk, end)
                self.K.round_safe_into(src[start:stop], out[start:stop], work[: stop - start])

        self._in_halves(src.size, part)
        return out.reshape(x.shape)

    def _in_halves(self, n: int, part: Callable[[int, int], Any]) -> list[Any]:
        """[part(0, n)], or the two halves' results (cut at a block boundary), side by side when
        n reaches twice ``split_min`` (tc0sim.engines.fast.pool)."""
        if n < 2 * self.split_min:
            return [part(0, n)]
        cut = max(1, round(n / (2 * self.chunk))) * self.chunk
        return list(pool.side_by_side(lambda: part(0, cut), lambda: part(cut, n)))

    def _rounded_range(self, bounds: Range) -> Range:
        """Bounds of x rounded to p bits from bounds of x (rounding is monotone)."""
        lo, hi = self.K.rounded(np.array([bounds[0], bounds[1]]))
        return (float(lo), float(hi), bounds[2], bounds[3])

    def _record(self, node: Node, value: Any, derived: Range | None = None) -> Any:
        """Remember the bounds of a node's values: derived ones, or measured on a float array."""
        if derived is not None:
            self.ranges[node.id] = derived
        elif isinstance(value, np.ndarray) and value.dtype != object:
            self.ranges[node.id] = magnitude_range(value)
        else:
            self.ranges[node.id] = UNKNOWN
        return value

    # --- nodes -------------------------------------------------------------------------------

    def apply(self, node: Node, args: list[Any]) -> Any:
        rule = FAST_RULES.get(node.prim)
        if rule is not None and rule.family == MOVE and node.id in self.fused:  # joins a deferred map's terms
            return defer(node, args)
        if rule is not None and rule.family == MOVE:
            if all(isinstance(a, np.ndarray) and a.dtype != object for a in args):
                bounds = range_of(rule, [self.ranges.get(i, UNKNOWN) for i in node.inputs], self.K.p, 1)
                return self._record(node, move(node, args, lambda: 0.0), bounds)
            return self._record(node, self.floats_or_objects(move(node, [self.objects(a) for a in args], lambda: self.F.zero)))
        fast = rule is not None and rule.family in MAPS | REDUCTIONS
        derived = None
        if fast and rule.range is not None:
            k = math.prod(d for i, d in enumerate(self._shape(node.inputs[0])) if i in node.attrs.get("axes", ())) if node.inputs else 1
            derived = self._derived_range(node, rule, k)
        if node.id in self.fused:
            return self._record(node, Deferred(node, args), derived)
        if fast and rule.family in REDUCTIONS:
            value = self._reduce(node, args[0])
        elif fast and rule.family in MAPS and all(a.dtype != object for a in args):
            value = self._map_full(node, rule, args)
            if rule.range is not None:  # from the operands' bounds, which _map_full may have tightened
                derived = self._derived_range(node, rule, k)
        elif rule is not None and rule.family == CONSTANT and (floats := self._constant(node)) is not None:
            return self._record(node, floats)
        else:  # no fast rule (log, sin, cos), or operands held as mpfr: the reference engine's rule
            return self._record(node, self.floats_or_objects(self.rule(node, [self.objects(a) for a in args])))
        return self._record(node, value, derived if value.dtype != object else UNKNOWN)

    def _derived_range(self, node: Node, rule: FastRule, k: int) -> Range:
        """The rule's range on the operands' current bounds. A node multiplied by itself has no
        negatives (round_p(x·x) >= 0), which a rule on bounds alone cannot see."""
        r = range_of(rule, [self.ranges.get(i, UNKNOWN) for i in node.inputs], self.K.p, k)
        if rule.product and len(node.inputs) == 2 and node.inputs[0] == node.inputs[1]:
            r = (r[0], r[1], r[2], False)
        return r

    def _constant(self, node: Node) -> np.ndarray | None:
        """A constant whose exact values are all normal float64 numbers or zeros (dyadic
        rationals with numerators below 2^53) or quotients n/d of integers below 2^p, rounded
        once to p bits by the fast kernels; None if one is not, or its rounding is out of range
        (then the MPFR rule rounds the constant). A quotient is Python's correctly rounded
        binary64 n / d rounded again: n and d are F_p values, so the double rounding of a
        division is innocuous (docs/semantics.md §2.2)."""
        nums, dens = [], []
        small = 1 << self.K.p
        for f in np.asarray(constant_value(node.attrs["value"]), dtype=object).ravel().tolist():
            n, d = getattr(f, "numerator", None), getattr(f, "denominator", None)
            if not isinstance(n, int) or not isinstance(d, int):
                return None
            if not d & (d - 1) and abs(n) < 2**53:  # dyadic: exactly a float64 when normal
                try:
                    x = math.ldexp(n, 1 - d.bit_length())
                except OverflowError:
                    return None
                num, den = x, 1
            elif abs(n) < small and d < small:
                x, num, den = n / d, n, d
            else:
                return None
            if n != 0 and abs(x) < MIN_NORMAL:  # subnormal, or below them (ldexp gives 0.0)
                return None
            nums.append(num)
            dens.append(den)
        r = self._round_quotients(np.array(nums, dtype=np.float64), np.array(dens, dtype=np.float64))
        return None if r is None else r.reshape(node.shape)

    def _round_quotients(self, n: np.ndarray, d: np.ndarray) -> np.ndarray | None:
        """round_p(n / d) for F_p values n, d > 0 (d = 1: a dyadic constant), or None if one is
        out of range: binary64's n / d rounded again (innocuous double rounding for p <= 25)."""
        r = self.K.rounded(n / d)
        return r if bool((self.K.in_range(r) | (r == 0)).all()) else None

    def _shape(self, node_id: int) -> tuple[int, ...]:
        return self.nodes[node_id].shape

    def _materialize(self, d: Deferred) -> np.ndarray:
        try:
            value = self._map_node(d)
        except FpArithmeticError as e:
            raise NamedError(named(d.node, e)) from None
        if d.extra is None:
            return value
        if value.dtype == object or d.extra.dtype == object:
            value, extra = self.objects(value), self.objects(d.extra)
            return self.floats_or_objects(join_terms(value, extra, (slice(None),) * (extra.ndim - 1)))
        return join_terms(value, d.extra, (slice(None),) * (d.extra.ndim - 1))

    def _map_node(self, d: Deferred) -> np.ndarray:
        if all(a.dtype != object for a in d.args):
            return self._map_full(d.node, FAST_RULES[d.node.prim], d.args)
        return self.floats_or_objects(self.rule(d.node, [self.objects(a) for a in d.args]))

    def _with_extras(self, values: np.ndarray, extras: dict[int, Any]) -> np.ndarray:
        if not extras:
            return values
        out = self.F.asarray(np.where(np.isfinite(values), values, 0.0))
        flat = out.reshape(-1)
        for i, v in extras.items():
            flat[i] = v
        return self.floats_or_objects(out)


class WideRun(Wide, FastRun):
    """One evaluation at 26 <= p <= 53: the double-double kernels' steps (``Wide``) in a FastRun."""

    kernels = fastfp_dd.Kernels53


@dataclass(frozen=True)
class Variant:
    """The fast engine at the precisions ``supports`` accepts: the run's class (its memory model's
    work bytes per element: tc0sim.engines.fast.memory.WORK_BYTES)."""

    supports: Callable[[int], bool]
    run: type[FastRun]


VARIANTS = (Variant(fastfp.supports, FastRun), Variant(fastfp_dd.supports, WideRun))
"""The fast engine's variants by precision, the first whose ``supports(p)`` holds."""

LIMIT = "the fast engine supports 2 <= p <= 53 (p-bit values are float64 values)"


def variant(p: int) -> Variant | None:
    """The variant serving precision p (None: the fast engine does not)."""
    return next((v for v in VARIANTS if v.supports(p)), None)


def _limit(p: int) -> str | None:
    return None if variant(p) is not None else f"{LIMIT}, got p={p}"


def _start(F: Format, stats: EvalStats, chunk: int | None, workers: int | None, scheduler: str | None) -> FastRun:
    found = variant(F.p)
    assert found is not None, _limit(F.p)
    return found.run(F, stats, chunk)


def _memory(p: int, chunk: int | None) -> FastMemory:
    return FastMemory(p, chunk)


FAST_RATE = 1e8
"""Gates per second of the fast engine's gates other than products, for the plan's time estimate:
elementwise maps, comparisons, ⊕ of maps, exp (1-3·10^8 measured on the examples at p <= 25, one
core of the 2-core build machine; MPFR-heavy graphs — ranges beyond binary64 — are slower)."""


def product_rate(p: int) -> float:
    """Products (mul gates, most of them feeding a ⊕) per second for the plan's time estimate: the
    fused kernel on both cores at p <= 25 (jit_dot: 7.3·10^9 over a whole FlowAR-S image at p = 8,
    3.8·10^9 on a 512³ matmul), the fused double-double kernel above (jit_dot_dd: 6.8·10^8 on a
    512 × 2048 × 512 matmul at p = 53, load 3)."""
    return 5e9 if fastfp.supports(p) else 7e8


FAST = NodeEngine("fast", _start, _memory, _limit, rate=FAST_RATE, product_rate=product_rate)
"""The fast engine (p <= 53): binary64 with certified single rounding, the same bits as MPFR."""
