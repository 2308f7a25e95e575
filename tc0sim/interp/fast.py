"""The fast engine of the evaluate interpreter: F_p (p <= 25) on float64 arrays, same bits as MPFR.

A node's value is a float64 array holding F_p values exactly, or (after an excursion outside
binary64's normal range, p >= 10) an object array of mpfr values, which is converted back to
float64 as soon as it fits. Kernels (tc0sim.fastfp) compute each primitive in binary64 and round
once; elements without a proof or certificate are recomputed by MPFR, whose errors are raised
unchanged. A primitive without a fast rule is evaluated by the MPFR engine's rule.

An elementwise node whose only consumer is a ⊕/⊗ (e.g. the products of a matmul) is not held
whole: it is evaluated with the reduction in blocks of at most ``chunk_elements`` elements.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from typing import Any

import gmpy2
import numpy as np

from tc0sim.fastfp import EXP_SINGLE_ARGUMENTS, Kernels, compact, magnitude_range
from tc0sim.fp import Format, FpArithmeticError, element_index
from tc0sim.interp.evaluate import (
    ENGINE_CLASSES, Deferred, EvalStats, MpfrEngine, NamedError, blocks, feeders_of_one_reduction, largest_block, named,
    starts,
)
from tc0sim.ir.exact import constant_value
from tc0sim.ir.graph import Node
from tc0sim.ir.primitives import PRIMITIVES
from tc0sim.ir.wiring import move

DEFAULT_CHUNK = 1 << 18
"""Default largest number of elements of a fused product block (2 MB of float64: a block's
work arrays stay in cache and are reused, which matters more than the number of numpy calls)."""

_MIN_NORMAL = 2.0**-1022
_MAX_FLOAT = float(np.finfo(np.float64).max)

# Fast kernels by F_p kernel name (the primitive's name). A primitive of the table without one
# here is evaluated by the MPFR engine's rule; tests/test_fastfp.py checks that every rounded
# fast kernel belongs to a 'rounded' primitive and every exact one to an 'exact' primitive.

ROUNDED_MAPS: dict[str, Callable[..., np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "sqrt": np.sqrt,
}
"""The basic operations: binary64, then rounded once more to p bits (innocuous double rounding)."""

EXACT_MAPS: dict[str, Callable[..., np.ndarray]] = {
    "max": np.maximum,
    "min": np.minimum,
    "relu": lambda a: np.maximum(a, 0.0),
    "neg": np.negative,
    "compare": lambda a, b: (a < b).astype(np.float64),
}
"""Primitives whose result is an operand (or 0/1): exact on F_p values."""

TRANSCENDENTAL_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"exp": np.exp}
"""numpy functions certified with fastfp.EXP_RELATIVE_ERROR per element."""

SINGLE_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"exp": np.exp}
"""Their binary32 versions (about 4x faster here), certified with fastfp.EXP_SINGLE_RELATIVE_ERROR
for operands with |x| in fastfp.EXP_SINGLE_ARGUMENTS; elements left uncertified are tried in
binary64 before MPFR."""

FAST_MAPS = set(ROUNDED_MAPS) | set(EXACT_MAPS) | set(TRANSCENDENTAL_MAPS)
REDUCTIONS = ("sum", "prod")

_EXACT_ZERO: dict[str, Callable[..., np.ndarray]] = {
    "add": lambda a, b: a == -b,
    "sub": lambda a, b: a == b,
    "mul": lambda a, b: (a == 0) | (b == 0),
    "div": lambda a, b: (a == 0) & (b != 0),
    "sqrt": lambda a: a == 0,
    "exp": lambda a: np.zeros(a.shape, dtype=bool),
}
"""Where an exact zero result is right (a zero is never 'in range' for Kernels.in_range)."""

Range = tuple[float, float, bool, bool]
"""Bounds on a node's values: (lower bound on the non-zero |x|, upper bound on |x|, may hold a
zero, may hold a negative number). Propagated through the graph by interval arithmetic, with a
factor 2 for every rounding, so that most nodes need no pass over their operands."""

UNKNOWN: Range = (0.0, math.inf, True, True)


def _union(ranges: list[Range]) -> Range:
    return (min(r[0] for r in ranges), max(r[1] for r in ranges), any(r[2] for r in ranges), any(r[3] for r in ranges))


def _exp_range(a: Range) -> Range:
    top = a[1]
    return (math.exp(-top) / 2 if top < 700 else 0.0, math.exp(top) * 2 if top < 700 else math.inf, False, False)


RANGE_RULES: dict[str, Callable[[list[Range], int, int], Range]] = {
    "add": lambda r, p, k: (min(r[0][0], r[1][0]) * 2.0 ** -(p + 1), 2 * (r[0][1] + r[1][1]), True, True),
    "sub": lambda r, p, k: (min(r[0][0], r[1][0]) * 2.0 ** -(p + 1), 2 * (r[0][1] + r[1][1]), True, True),
    "mul": lambda r, p, k: (r[0][0] * r[1][0] / 2, 2 * r[0][1] * r[1][1], r[0][2] or r[1][2], r[0][3] or r[1][3]),
    "div": lambda r, p, k: (r[0][0] / r[1][1] / 2 if r[1][1] else 0.0, 2 * r[0][1] / r[1][0] if r[1][0] else math.inf,
                            r[0][2], r[0][3] or r[1][3]),
    "sqrt": lambda r, p, k: (math.sqrt(r[0][0]) / 2, 2 * math.sqrt(r[0][1]), r[0][2], False),
    "exp": lambda r, p, k: _exp_range(r[0]),
    "max": lambda r, p, k: _union(r),
    "min": lambda r, p, k: _union(r),
    "relu": lambda r, p, k: (r[0][0], r[0][1], True, False),
    "neg": lambda r, p, k: (r[0][0], r[0][1], r[0][2], True),
    "compare": lambda r, p, k: (1.0, 1.0, True, False),
    "sum": lambda r, p, k: (r[0][0] * 2.0 ** -(p + 1), 2 * k * r[0][1], True, r[0][3]),
    "prod": lambda r, p, k: (r[0][0] ** k / 2 if r[0][0] < math.inf else 0.0, 2 * r[0][1] ** k if k < 1000 else math.inf,
                             r[0][2], r[0][3]),
}
"""Interval rules by fast kernel: the bounds of a node's values from its operands' bounds (a ⊕ of
fan-in k of multiples of 2^L is a multiple of 2^L, hence its non-zero values are >= lo·2^-p)."""


def _range_rule(prim: str, ranges: list[Range], p: int, k: int) -> Range:
    try:
        return RANGE_RULES[prim](ranges, p, k)
    except (OverflowError, ZeroDivisionError, ValueError):
        return UNKNOWN


NONNEGATIVE = "terms >= 0"
"""Marks a ⊕ whose terms are all >= 0 (squares, or a range without negatives): then Σ|t| = Σt,
and the binary64 sum y bounds it, Σt <= y / (1 - γ_{k-1}) <= y·(1 + 2^-9), whenever the sum is
certified at all (sum_bound needs k·u <= 2^-10). No extra pass over the terms is needed."""

Error = tuple[int, FpArithmeticError]
"""The first failing element of a block: (flat index in the node, error naming the element)."""


def _fresh(result: Any) -> np.ndarray:
    """A writable float64 array of a ufunc result (a 0-d result may come back as a scalar)."""
    if isinstance(result, np.ndarray) and result.dtype == np.float64 and result.flags.c_contiguous and result.flags.writeable:
        return result
    return np.array(result, dtype=np.float64, order="C")


def _abs_product_sums(
    args: list[np.ndarray], shape: tuple[int, ...], kept: list[int], p: int, bounds: list[Range]
) -> np.ndarray | None:
    """Upper bounds on Σ|round_p(a·b)| over the reduced axes, for broadcast operands a, b, in
    O(distinct elements): by Cauchy–Schwarz Σ|a||b| <= ‖a‖·‖b‖ (norms over the reduced axes), times
    (1 + 2^-p) for the rounding of each product and (1 + 2^-8) for the binary64 error of the
    norms (k·u <= 2^-10). None when a square could under- or overflow (then Σ|t| is summed)."""
    reduced = tuple(ax for ax in range(len(shape)) if ax not in kept)
    bound: Any = (1 + 2.0**-p) * (1 + 2.0**-8)
    squares_safe = lambda r: r[1] <= 2.0**500 and (r[1] == 0 or r[0] >= 2.0**-500)  # noqa: E731
    for a, b in zip(args, bounds):
        if not squares_safe(b) and not squares_safe(magnitude_range(a)):
            return None
        c = compact(a)
        missing = math.prod(shape[ax] for ax in reduced if c.shape[ax] == 1)
        axes = "".join(chr(ord("a") + ax) for ax in range(len(shape)))
        squares = np.einsum(f"{axes},{axes}->{''.join(axes[ax] for ax in kept)}", c, c)  # no c·c temporary
        bound = bound * np.sqrt(squares.reshape([1 if ax in reduced else c.shape[ax] for ax in range(len(shape))]) * missing)
    return np.broadcast_to(bound, tuple(1 if ax in reduced else n for ax, n in enumerate(shape))).reshape(
        [shape[ax] for ax in kept]
    )


POOL_BYTES = 1 << 28
"""Most bytes of freed node outputs kept for reuse (per thread, across evaluations)."""

POOL_MIN_BYTES = 1 << 20
"""Smaller arrays are left to numpy's allocator."""


class _Memory(threading.local):
    """Work arrays and freed node outputs of this thread's evaluations. The first write to fresh
    memory costs a page fault per 4 kB page, which on the build machine made an 8 MB array up
    to 10x slower to fill than memory used before; reusing arrays avoids it."""

    def __init__(self) -> None:
        self.work: dict[str, np.ndarray] = {}
        self.free: dict[int, list[np.ndarray]] = {}
        self.pooled = 0

    def output(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised C-contiguous float64 array of ``shape`` (a freed one if there is)."""
        nbytes = 8 * math.prod(shape)
        arrays = self.free.get(nbytes)
        if arrays:
            self.pooled -= nbytes
            array = arrays.pop()
            array.shape = shape  # in place: the array stays the owner of its memory
            return array
        return np.empty(shape, dtype=np.float64)

    def give(self, array: np.ndarray) -> None:
        if self.pooled + array.nbytes <= POOL_BYTES:
            self.free.setdefault(array.nbytes, []).append(array)
            self.pooled += array.nbytes


_MEMORY = _Memory()


def _unshared_refs(value: Any) -> int:
    return sys.getrefcount(value)


def _refs_of_a_temporary(value: Any) -> int:
    """The same call path as FastEngine.release (a temporary passed on to _unshared_refs)."""
    return _unshared_refs(value)


_UNSHARED = _refs_of_a_temporary(np.empty(1))
"""The reference count release sees for an array held by nothing else (no view, no other
value): measured once on this interpreter, along the same call path, rather than assumed."""


class FastEngine(MpfrEngine):
    """Evaluate with binary64 kernels where proven or certified, MPFR elsewhere (same bits)."""

    name = "fast"

    def __init__(self, F: Format, stats: EvalStats, chunk_elements: int | None = None) -> None:
        super().__init__(F, stats, max(1, int(chunk_elements or DEFAULT_CHUNK)))
        self.K = Kernels(F.p)
        self._mp = lambda v: gmpy2.mpfr(v, F.p)
        self.ranges: dict[int, Range] = {}

    def _buffer(self, slot: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """A reusable work array (allocating a fresh large array per block costs page faults):
        one flat array per slot and thread, grown when needed, viewed with the shape asked for."""
        n = math.prod(shape)
        work = _MEMORY.work
        buf = work.get(slot)
        if buf is None or buf.size < n or buf.dtype != dtype:
            buf = work[slot] = np.empty(max(n, 1), dtype=dtype)
        return buf[:n].reshape(shape)

    def release(self, value: Any) -> None:
        """A node's value no node reads any more: kept for reuse if nothing else holds it (no
        view of it, no deferred node, not an output), checked by its reference count."""
        if (isinstance(value, np.ndarray) and value.dtype == np.float64 and value.base is None
                and value.flags.c_contiguous and value.flags.writeable and value.nbytes >= POOL_MIN_BYTES
                and _unshared_refs(value) <= _UNSHARED):
            _MEMORY.give(value)

    pool_bytes = POOL_BYTES

    def bytes_per_value(self) -> tuple[int, int]:
        return 8, 0  # a float64 per value

    def work_bytes(self, node: Node, shape: tuple[int, ...], fused: bool, operand_bytes: int) -> int:
        """The work arrays of a node's blocks (bit patterns, flags, binary32 copies, products of a
        fused map and numpy's temporaries: 48 bytes per element of the largest block), and a
        fused map's operands transposed (at most a copy of each). A primitive without a fast
        kernel (erf) runs the MPFR rule on mpfr copies of its operands and result."""
        row = PRIMITIVES[node.prim]
        if row.kernel not in FAST_MAPS and row.kernel not in REDUCTIONS:
            mpfr_value = sum(MpfrEngine.bytes_per_value(self))
            copies = math.prod(shape) * len(node.inputs) + node.size
            return MpfrEngine.work_bytes(self, node, shape, False, 0) + copies * mpfr_value
        axes = tuple(node.attrs.get("axes", ())) if row.role == "reduction" else ()
        return 48 * largest_block(shape, axes, self.chunk) + (operand_bytes if fused else 0)

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        self.nodes = {node.id: node for node in live}
        is_map = lambda node: getattr(PRIMITIVES.get(node.prim), "kernel", None) in FAST_MAPS  # noqa: E731
        is_reduction = lambda node: node.prim in REDUCTIONS  # noqa: E731
        self.fused.update(n.id for n in feeders_of_one_reduction(live, keep, is_map, is_reduction) if n.size > self.chunk)

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
        if not (zero | ((a >= _MIN_NORMAL) & (a <= _MAX_FLOAT))).all():
            return value
        if not all(flat[i] == 0 for i in np.flatnonzero(zero).tolist()):
            return value
        return floats.reshape(value.shape)

    def result(self, value: Any, values: str) -> np.ndarray:
        if values == "native" or (values == "float64" and value.dtype != object):
            return value
        return super().result(self.objects(value), values)

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
                r = np.ascontiguousarray(x)
                flat = r.reshape(-1)
                work = np.empty(min(self.chunk, flat.size), dtype=np.int64)
                parts = []
                for start in range(0, flat.size, self.chunk):
                    part = flat[start:start + self.chunk]
                    nonzero = part != 0  # before rounding: a subnormal may round to 0
                    part = self.K.round_inplace(part, work[: part.size])
                    parts.append(np.flatnonzero(~self.K.in_range(part) & nonzero) + start)
                flagged = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
                extras: dict[int, Any] = {}
                for i in flagged.tolist():
                    try:
                        self._store(flat, extras, i, self.F.round(arr.flat[i].item()))
                    except FpArithmeticError as e:
                        raise type(e)(f"input {node.name!r}: {e}") from None
                self.stats.recomputed += len(flagged)
                return self._record(node, self._with_extras(r, extras))
        return self._record(node, self.floats_or_objects(super().entry(node, value)))

    def _round_safe_copy(self, x: np.ndarray) -> np.ndarray:
        """x (float64, every non-zero |x| proved safe) rounded to p bits into a new array, by blocks."""
        src = np.ascontiguousarray(x).reshape(-1)
        out = _MEMORY.output(src.shape)
        work = self._buffer("bits", (min(self.chunk, src.size),), np.int64)
        for start in range(0, src.size, self.chunk):
            stop = min(start + self.chunk, src.size)
            self.K.round_safe_into(src[start:stop], out[start:stop], work[: stop - start])
        return out.reshape(x.shape)

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
        row = PRIMITIVES.get(node.prim)
        if row is None:
            return self.rule(node, args)
        prim = row.kernel
        operands = [self.ranges.get(i, UNKNOWN) for i in node.inputs]
        if prim is None and row.move is not None:
            if all(isinstance(a, np.ndarray) and a.dtype != object for a in args):
                bounds = _union(operands) if operands else UNKNOWN
                if node.prim == "pad":
                    bounds = (bounds[0], bounds[1], True, bounds[3])
                return self._record(node, move(node, args, lambda: 0.0), bounds)
            return self._record(node, self.floats_or_objects(move(node, [self.objects(a) for a in args], lambda: self.F.zero)))
        fast = prim in FAST_MAPS or (prim in REDUCTIONS and row.role == "reduction")
        k = math.prod(d for i, d in enumerate(self._shape(node.inputs[0])) if i in node.attrs.get("axes", ())) if node.inputs else 1
        derived = self._derived_range(node, prim, k) if fast and prim in RANGE_RULES else None
        if node.id in self.fused:
            return self._record(node, Deferred(node, args), derived)
        if prim in REDUCTIONS and row.role == "reduction":
            value = self._reduce(node, args[0])
        elif prim in FAST_MAPS and all(a.dtype != object for a in args):
            value = self._map_full(node, prim, args)
            if prim in RANGE_RULES:  # from the operands' bounds, which _map_full may have tightened
                derived = self._derived_range(node, prim, k)
        elif node.prim == "constant" and (floats := self._constant(node)) is not None:
            return self._record(node, floats)
        else:
            return self._record(node, self.floats_or_objects(self.rule(node, [self.objects(a) for a in args])))
        return self._record(node, value, derived if value.dtype != object else UNKNOWN)

    def _derived_range(self, node: Node, prim: str, k: int) -> Range:
        """The range rule of ``prim`` on the operands' current bounds. A node multiplied by
        itself has no negatives (round_p(x·x) >= 0), which a rule on bounds alone cannot see."""
        r = _range_rule(prim, [self.ranges.get(i, UNKNOWN) for i in node.inputs], self.K.p, k)
        if prim == "mul" and len(node.inputs) == 2 and node.inputs[0] == node.inputs[1]:
            r = (r[0], r[1], r[2], False)
        return r

    def _constant(self, node: Node) -> np.ndarray | None:
        """A constant whose exact values are all normal float64 numbers or zeros (dyadic
        rationals with numerators below 2^53) or quotients n/d of integers below 2^p, rounded
        once to p bits by the fast kernels; None if one is not, or its rounding is out of range
        (then the MPFR rule rounds the constant). A quotient is Python's correctly rounded
        binary64 n / d rounded again: n and d are F_p values, so the double rounding of a
        division is innocuous (docs/semantics.md §2.2)."""
        floats = []
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
            elif abs(n) < small and d < small:
                x = n / d
            else:
                return None
            if n != 0 and abs(x) < _MIN_NORMAL:  # subnormal, or below them (ldexp gives 0.0)
                return None
            floats.append(x)
        r = self.K.rounded(np.array(floats, dtype=np.float64)).reshape(node.shape)
        return r if bool((self.K.in_range(r) | (r == 0)).all()) else None

    def _shape(self, node_id: int) -> tuple[int, ...]:
        return self.nodes[node_id].shape

    def _materialize(self, d: Deferred) -> np.ndarray:
        try:
            return self._map_node(d)
        except FpArithmeticError as e:
            raise NamedError(named(d.node, e)) from None

    def _map_node(self, d: Deferred) -> np.ndarray:
        if all(a.dtype != object for a in d.args):
            return self._map_full(d.node, PRIMITIVES[d.node.prim].kernel, d.args)
        return self.floats_or_objects(self.rule(d.node, [self.objects(a) for a in d.args]))

    def _with_extras(self, values: np.ndarray, extras: dict[int, Any]) -> np.ndarray:
        if not extras:
            return values
        out = self.F.asarray(np.where(np.isfinite(values), values, 0.0))
        flat = out.reshape(-1)
        for i, v in extras.items():
            flat[i] = v
        return self.floats_or_objects(out)

    # --- elementwise ---------------------------------------------------------------------------

    def _safe(self, prim: str, args: list[np.ndarray], inputs: tuple[int, ...]) -> bool:
        """Whether interval analysis proves every result in range (then no per-element check):
        from the propagated bounds of the operands, else measuring them, smallest first."""
        if prim not in ROUNDED_MAPS and prim not in TRANSCENDENTAL_MAPS:
            return False
        bounds = [self.ranges.get(i, UNKNOWN) for i in inputs]
        if self._safe_for(prim, bounds):
            return True
        for j in sorted(range(len(args)), key=lambda j: compact(args[j]).size):  # smallest first
            bounds[j] = self.ranges[inputs[j]] = magnitude_range(args[j])  # exact: kept for later nodes
            if self._safe_for(prim, bounds):
                return True
        return False

    def _safe_for(self, prim: str, ranges: list[Range]) -> bool:
        K = self.K
        if prim == "sqrt":
            return not ranges[0][3]
        if prim == "exp":
            top = ranges[0][1]
            return top < 700 and K.magnitudes_safe(math.exp(-top), math.exp(top))
        (la, ha, _, _), (lb, hb, zb, _) = ranges
        if prim in ("add", "sub"):
            lo, hi = min(la, lb) * 2.0 ** -(K.p), ha + hb
        elif prim == "mul":
            lo, hi = la * lb, ha * hb
        else:
            if zb:
                return False
            lo, hi = la / hb, ha / lb
        return K.magnitudes_safe(lo, hi) if math.isfinite(hi) else False

    def _map_full(self, node: Node, prim: str, args: list[np.ndarray]) -> np.ndarray:
        """An elementwise node, in blocks of at most ``chunk`` elements (work arrays stay small)."""
        self.stats.add_gates("fast", node)
        shape = node.shape
        if not shape:
            return self._map_full(Node(node.id, node.prim, (1,), node.inputs, node.attrs, node.scope, node.name),
                                  prim, [np.reshape(a, (1,)) for a in args]).reshape(())
        safe = self._safe(prim, args, node.inputs)
        single = self._single(prim, node.inputs)
        out = _MEMORY.output(shape)
        extras: dict[int, Any] = {}
        for index in blocks(shape, list(range(len(shape))), self.chunk):
            block = out[index]
            _, block_extras, error = self._map_block(prim, [a[index] for a in args], safe, shape, starts(index), block, single)
            if error is not None:
                raise error[1]
            for i, v in block_extras.items():
                g = element_index(i, block.shape, starts(index))
                extras[int(np.ravel_multi_index(g, shape))] = v
        return self._with_extras(out, extras)

    def _map_block(
        self, prim: str, args: list[np.ndarray], safe: bool, shape: tuple[int, ...], starts: tuple[int, ...],
        out: np.ndarray, single: bool = False,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """One block of an elementwise node of ``shape``, written into the C-contiguous ``out``:
        the values, MPFR values that are not float64 (by flat index in the block), first error.
        ``single``: a transcendental primitive may start from its binary32 kernel."""
        K = self.K
        if prim in EXACT_MAPS:
            out[...] = EXACT_MAPS[prim](*args)
            return out, {}, None
        bits = self._buffer("bits", out.shape, np.int64)
        with np.errstate(all="ignore"):
            if prim in TRANSCENDENTAL_MAPS:
                ok = self._transcendental(prim, args[0], out, bits, single)
                r = K.round_certified_inplace(out)  # certified elements are no ties
                if not safe:
                    ok &= K.in_range(r)
                n_ok = int(np.count_nonzero(ok))
                self.stats.certified += n_ok
                if n_ok == ok.size:
                    return r, {}, None
            elif safe:
                ROUNDED_MAPS[prim](*args, out=out)
                return K.round_safe_inplace(out, bits), {}, None
            else:
                ROUNDED_MAPS[prim](*args, out=out)
                r = K.round_inplace(out, bits)
                ok = K.in_range(r)
                if ok.all():
                    return r, {}, None
        flagged = np.flatnonzero(~ok.reshape(-1))
        where = np.unravel_index(flagged, r.shape)
        operands = [np.broadcast_to(a, r.shape)[where] for a in args]
        zero = _EXACT_ZERO[prim](*operands)
        r.reshape(-1)[flagged[zero]] = 0.0
        return self._recompute(prim, r, flagged[~zero], [o[~zero] for o in operands], shape, starts)

    def _transcendental(self, prim: str, x: np.ndarray, out: np.ndarray, bits: np.ndarray, single: bool) -> np.ndarray:
        """``out`` = the numpy function of x (from binary32 where ``single``); returns the
        certified elements. Converting a p-bit x with |x| in EXP_SINGLE_ARGUMENTS to binary32 and
        the binary32 result back are exact, so only the function's own error counts."""
        K = self.K
        ok = self._buffer("ok", out.shape, np.bool_)
        if not single:
            TRANSCENDENTAL_MAPS[prim](x, out=out)
            return K.certify_exp(out, bits, ok)
        x32 = self._buffer("single", out.shape, np.float32)
        np.copyto(x32, x, casting="same_kind")
        SINGLE_MAPS[prim](x32, out=x32)
        np.copyto(out, x32)
        K.certify_exp(out, bits, ok, K.exp_single_threshold)
        retry = np.flatnonzero(~ok.reshape(-1))
        if retry.size:
            y = TRANSCENDENTAL_MAPS[prim](np.broadcast_to(x, out.shape)[np.unravel_index(retry, out.shape)])
            out.reshape(-1)[retry] = y
            ok.reshape(-1)[retry] = K.certify_exp(y)
        return ok

    def _single(self, prim: str, inputs: tuple[int, ...]) -> bool:
        """Whether a transcendental node may start from its binary32 kernel: p is small enough
        for that kernel's certificate, and the operand's bounds lie in EXP_SINGLE_ARGUMENTS."""
        if prim not in SINGLE_MAPS or self.K.exp_single_threshold is None:
            return False
        lo, hi, _, _ = self.ranges.get(inputs[0], UNKNOWN)
        return EXP_SINGLE_ARGUMENTS[0] <= lo and hi <= EXP_SINGLE_ARGUMENTS[1]

    def _recompute(
        self, prim: str, r: np.ndarray, flagged: np.ndarray, operands: list[np.ndarray],
        shape: tuple[int, ...], starts: tuple[int, ...],
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """MPFR for the flagged elements, in flat order; the first error ends the block."""
        F = self.F
        flat = r.reshape(-1)
        extras: dict[int, Any] = {}
        mp = self._mp
        self.stats.recomputed += len(flagged)
        for j, i in enumerate(flagged.tolist()):
            try:
                v = F.apply(prim, *(mp(float(o[j])) for o in operands))
            except FpArithmeticError as e:
                index = element_index(i, r.shape, starts) if shape else ()
                return r, extras, (int(np.ravel_multi_index(index, shape)) if shape else 0, type(e)(f"{e} (element {index})"))
            self._store(flat, extras, i, v)
        return r, extras, None

    @staticmethod
    def _store(flat: np.ndarray, extras: dict[int, Any], i: int, v: Any) -> None:
        f = float(v)
        if f == 0.0 and v == 0 or _MIN_NORMAL <= abs(f) <= _MAX_FLOAT:
            flat[i] = f
        else:
            flat[i] = np.nan
            extras[i] = v

    # --- reductions ---------------------------------------------------------------------------

    @staticmethod
    def _pair_sum(terms: np.ndarray, block_shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
        """Binary64 t0 + t1 per output of a ⊕ of two terms: ⊕ of two F_p values is their add, so
        rounding this once more to p bits is exact (innocuous double rounding, no certificate);
        it is 0 only if the exact sum is (a binary64 sum that underflows is exact)."""
        pair = next(a for a in axes if block_shape[a] == 2)
        first = tuple(0 if a == pair else slice(None) for a in range(len(block_shape)))
        second = tuple(1 if a == pair else slice(None) for a in range(len(block_shape)))
        return np.add(terms[first], terms[second]).reshape(-1)

    def _sum_certified(self, y: np.ndarray, r: np.ndarray, abs_sums: np.ndarray | float, k: int) -> np.ndarray:
        """True where the binary64 sums y of k terms with Σ|terms| <= abs_sums round like the exact
        sums (r: y rounded): in range and no F_p midpoint within the error bound, or all terms zero."""
        K = self.K
        zero = np.asarray(abs_sums) == 0
        bound = K.sum_bound(np.broadcast_to(abs_sums, y.shape), k)
        if bound is None:
            return np.broadcast_to(zero, y.shape).copy()
        return (K.in_range(r) & K.certify_absolute(y, bound)) | zero

    def _reduce(self, node: Node, x: Any) -> np.ndarray:
        if isinstance(x, Deferred) and any(a.dtype == object for a in x.args):
            x = self._materialize(x)
        if not isinstance(x, Deferred) and x.dtype == object:
            return self.floats_or_objects(self.rule(node, [x]))
        self.stats.add_gates("fast", node)
        m_node, m_args = (x.node, x.args) if isinstance(x, Deferred) else (None, [x])
        m_prim = PRIMITIVES[m_node.prim].kernel if m_node is not None else None
        if m_node is not None:
            self.stats.add_gates("fast", m_node)
        shape = m_node.shape if m_node is not None else x.shape
        axes = tuple(node.attrs["axes"])
        kept = [i for i in range(len(shape)) if i not in axes]
        safe = self._safe(m_prim, m_args, m_node.inputs) if m_node is not None else False
        abs_sums: np.ndarray | float | str | None = None
        k = math.prod(shape[a] for a in axes)
        terms_range = self.ranges.get(m_node.id if m_node is not None else node.inputs[0], UNKNOWN)
        if PRIMITIVES[node.prim].kernel == "sum" and not terms_range[3]:
            abs_sums = NONNEGATIVE
        elif safe and m_prim == "mul" and len(m_args) == 2 and k > 2:
            bounds = [self.ranges.get(i, UNKNOWN) for i in m_node.inputs]
            abs_sums = _abs_product_sums(m_args, shape, kept, self.K.p, bounds)
        if abs_sums is None:
            abs_sums = k * terms_range[1] if k * terms_range[1] < _MAX_FLOAT / 4 else None
        reduce_prim = PRIMITIVES[node.prim].kernel
        perm = kept + list(axes)
        if m_node is not None and k > 2 and perm != sorted(perm):
            # Products laid out with the reduced axes last: numpy's loops then run along them
            # (a short innermost kept axis makes products and sums several times slower). Any
            # error is raised from the original layout, so that it names the same element.
            moved = [np.broadcast_to(np.ascontiguousarray(compact(a).transpose(perm)), tuple(shape[i] for i in perm))
                     for a in m_args]
            found = self._reduce_in_blocks(
                node, reduce_prim, m_node, m_prim, moved, tuple(shape[i] for i in perm),
                tuple(range(len(kept), len(shape))), list(range(len(kept))), safe, abs_sums, terms_range,
            )
            if found[2] is None and found[3] is None:
                return self._with_extras(found[0], found[1])
        out, extras, map_error, red_error = self._reduce_in_blocks(
            node, reduce_prim, m_node, m_prim, m_args, shape, axes, kept, safe, abs_sums, terms_range
        )
        if map_error is not None:
            raise NamedError(named(m_node, map_error[1]))
        if red_error is not None:
            raise red_error[1]
        return self._with_extras(out, extras)

    def _reduce_in_blocks(
        self, node: Node, reduce_prim: str, m_node: Node | None, m_prim: str | None, m_args: list[np.ndarray],
        shape: tuple[int, ...], axes: tuple[int, ...], kept: list[int], safe: bool,
        abs_sums: np.ndarray | float | str | None, terms_range: Range,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None, Error | None]:
        """A ⊕/⊗ node (of map ``m_node`` of ``m_args`` if fused, else of ``m_args[0]``, whose values
        lie in ``terms_range``) in blocks cut along the kept axes: values (NaN where MPFR values
        are in extras), extras, first errors."""
        out = _MEMORY.output(node.shape)
        out_flat = out.reshape(-1)
        extras: dict[int, Any] = {}
        map_error: Error | None = None
        red_error: Error | None = None
        pair_safe = terms_range[1] < math.inf and self._safe_for("add", [terms_range, terms_range])
        single = m_node is not None and self._single(m_prim, m_node.inputs)
        for index in blocks(shape, kept, self.chunk):
            block_args = [a[index] for a in m_args]
            if m_node is not None:
                block_shape = np.broadcast_shapes(*(a.shape for a in block_args))
                terms, t_extras, err = self._map_block(
                    m_prim, block_args, safe, shape, starts(index), self._buffer("terms", block_shape, np.float64), single
                )
                if err is not None and (map_error is None or err[0] < map_error[0]):
                    map_error = err
            else:
                terms, t_extras = block_args[0], {}
                block_shape = terms.shape
            if map_error is not None or red_error is not None:
                continue
            out_index = tuple(index[a] for a in kept)
            out_starts = starts(out_index)
            values, v_extras, red_error = self._reduce_block(
                reduce_prim, terms, t_extras, block_shape, axes, kept, out_starts,
                abs_sums[out_index].reshape(-1) if isinstance(abs_sums, np.ndarray) else abs_sums,
                pair_safe,
            )
            out[out_index] = values
            if v_extras:
                local_shape = values.shape
                for i, v in v_extras.items():
                    g = element_index(i, local_shape, out_starts)
                    extras[int(np.ravel_multi_index(g, node.shape)) if node.shape else 0] = v
        for i in extras:
            out_flat[i] = np.nan
        return out, extras, map_error, red_error

    def _reduce_block(
        self, prim: str, terms: np.ndarray, t_extras: dict[int, Any], block_shape: tuple[int, ...],
        axes: tuple[int, ...], kept: list[int], out_starts: tuple[int, ...],
        abs_sums: np.ndarray | float | str | None, pair_safe: bool = False,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """One block of a ⊕/⊗: certified binary64 results, the rest by MPFR in output order.
        ``abs_sums`` (sum only) are upper bounds on Σ|terms| per output (or one for all),
        NONNEGATIVE (taken from the sums themselves), or None to compute them; rows a loose bound
        leaves uncertified are checked again with Σ|terms|.
        ``pair_safe``: interval analysis proves every sum of two terms in range."""
        K = self.K
        k = math.prod(block_shape[a] for a in axes)
        n_out = math.prod(block_shape[a] for a in kept)
        out_block = tuple(block_shape[a] for a in kept)
        if t_extras:
            ok = np.zeros(n_out, dtype=bool)
            r = np.zeros(n_out)
        elif prim == "sum" and k == 2:
            with np.errstate(all="ignore"):
                y = self._pair_sum(terms, block_shape, axes)
                if pair_safe:
                    return K.round_safe_inplace(y, self._buffer("bits", y.shape, np.int64)).reshape(out_block), {}, None
                r = K.rounded(y)
                ok = K.in_range(r) | (y == 0)
        elif prim == "sum":
            with np.errstate(all="ignore"):
                y = np.asarray(np.sum(terms, axis=axes), dtype=np.float64).reshape(-1)
                if abs_sums is NONNEGATIVE:
                    abs_sums = y * (1 + 2.0**-9)
                elif abs_sums is None:
                    abs_sums = np.asarray(np.sum(np.abs(terms), axis=axes), dtype=np.float64).reshape(-1)
                r = K.rounded(y)
                ok = self._sum_certified(y, r, abs_sums, k)
        else:
            with np.errstate(all="ignore"):
                mant, exps = np.frexp(terms)
                mp = np.asarray(np.prod(mant, axis=axes), dtype=np.float64).reshape(-1)
                es = np.asarray(np.sum(exps, axis=axes, dtype=np.int64)).reshape(-1)
                y = np.ldexp(mp, np.clip(es, -4000, 4000).astype(np.int32))
                r = K.rounded(y)
                ok = K.in_range(r)
                if k * K.p > 53:
                    dist = K.midpoint_distance(y.view(np.int64))
                    ok &= (dist >= 2 * k + 2) & (2 * k + 2 < (1 << (K.s - 2)))
                ok |= mp == 0
        n_ok = int(ok.sum())
        self.stats.certified += n_ok
        if n_ok == n_out:
            return r.reshape(out_block), {}, None
        perm = kept + list(axes)

        def gather(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
            """Rows idx of a block-shaped array, in the MPFR engine's term order (a small copy)."""
            t = np.transpose(a, perm)
            return t.reshape(1, k)[idx] if not out_block else t[np.unravel_index(idx, out_block)].reshape(len(idx), k)

        flagged = np.flatnonzero(~ok)
        if prim == "sum" and not t_extras:
            candidates = gather(terms, flagged)
            with np.errstate(all="ignore"):
                again = self._sum_certified(y[flagged], r[flagged], np.abs(candidates).sum(axis=1), k)
            again |= K.exact_sum_rows(candidates) & (K.in_range(r[flagged]) | (y[flagged] == 0))
            self.stats.certified += int(again.sum())
            flagged = flagged[~again]
        rows = gather(terms, flagged).tolist()
        positions = gather(np.arange(terms.size).reshape(block_shape), flagged).tolist() if t_extras else None
        op = getattr(self.F, prim)
        mp = self._mp
        extras: dict[int, Any] = {}
        self.stats.recomputed += len(flagged)
        for j, i in enumerate(flagged.tolist()):
            if positions is None:
                row = [mp(v) for v in rows[j]]
            else:
                row = [t_extras[q] if q in t_extras else mp(v) for v, q in zip(rows[j], positions[j])]
            try:
                v = op(row)
            except FpArithmeticError as e:
                g = element_index(i, out_block, out_starts)
                return r.reshape(out_block), extras, (0, type(e)(f"{e} (element {g})"))
            self._store(r, extras, i, v)
        return r.reshape(out_block), extras, None


ENGINE_CLASSES["fast"] = FastEngine
