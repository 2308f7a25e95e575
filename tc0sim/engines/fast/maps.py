"""The fast engine's elementwise nodes: binary64 by the rule's numpy function, rounded once to
p bits; proved in range by interval analysis, or checked and certified per element, the rest
recomputed by MPFR in flat order (docs/semantics.md §2.4)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from tc0sim.engines.base import EvalStats
from tc0sim.engines.blocking import blocks, starts
from tc0sim.engines.fast import pool
from tc0sim.engines.fast.memory import _MEMORY, buffer
from tc0sim.engines.fast.rules import CERTIFIED, EXACT, ROUNDED, UNKNOWN, FastRule
from tc0sim.fastfp import EXP_SINGLE_ARGUMENTS, compact, magnitude_range
from tc0sim.fp import FpArithmeticError, element_index
from tc0sim.ir.graph import Node

MIN_NORMAL = 2.0**-1022
MAX_FLOAT = float(np.finfo(np.float64).max)

Error = tuple[int, FpArithmeticError]
"""The first failing element of a block: (flat index in the node, error naming the element)."""


class Maps:
    """Elementwise nodes of a ``FastRun`` (its K, F, stats, ranges, chunk and split_min)."""

    split_min: float
    """Fewest elements of a block computed as two halves side by side (infinite: one thread;
    set by the run from its memory model, FastMemory.split_min)."""

    def _safe(self, rule: FastRule, args: list[np.ndarray], inputs: tuple[int, ...]) -> bool:
        """Whether interval analysis proves every result in range (then no per-element check):
        from the propagated bounds of the operands, else measuring them, smallest first."""
        if rule.safe is None or rule.family not in (ROUNDED, CERTIFIED):
            return False
        bounds = [self.ranges.get(i, UNKNOWN) for i in inputs]
        if rule.safe(self.K, bounds):
            return True
        for j in sorted(range(len(args)), key=lambda j: compact(args[j]).size):  # smallest first
            bounds[j] = self.ranges[inputs[j]] = magnitude_range(args[j])  # exact: kept for later nodes
            if rule.safe(self.K, bounds):
                return True
        return False

    def _map_full(self, node: Node, rule: FastRule, args: list[np.ndarray]) -> np.ndarray:
        """An elementwise node, in blocks of at most ``chunk`` elements (work arrays stay small)."""
        shape = node.shape
        if not shape:  # counted once, as its (1,)-shaped stand-in
            return self._map_full(Node(node.id, node.prim, (1,), node.inputs, node.attrs, node.scope, node.name),
                                  rule, [np.reshape(a, (1,)) for a in args]).reshape(())
        self.stats.add_gates("fast", node)
        safe = self._safe(rule, args, node.inputs)
        single = self._single(rule, node.inputs)
        out = _MEMORY.output(shape)
        extras: dict[int, Any] = {}
        for index in blocks(shape, list(range(len(shape))), self.chunk):
            block = out[index]
            _, block_extras, error = self._map_block(rule, [a[index] for a in args], safe, shape, starts(index), block, single)
            if error is not None:
                raise error[1]
            for i, v in block_extras.items():
                g = element_index(i, block.shape, starts(index))
                extras[int(np.ravel_multi_index(g, shape))] = v
        return self._with_extras(out, extras)

    def _map_block(
        self, rule: FastRule, args: list[np.ndarray], safe: bool, shape: tuple[int, ...], starts: tuple[int, ...],
        out: np.ndarray, single: bool = False,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """One block of an elementwise node of ``shape``, written into the C-contiguous ``out``:
        the values, MPFR values that are not float64 (by flat index in the block), first error.
        ``single``: a transcendental primitive may start from its binary32 kernel. A block of at
        least ``split_min`` elements is computed as two halves side by side (tc0sim.engines.fast.pool)."""
        cut = pool.halves(out, args, starts) if out.size >= self.split_min else None
        if cut is None:
            return self._map_part(rule, args, safe, shape, starts, out, single)
        (o1, a1, s1), (o2, a2, s2) = cut
        twin = self._twin()
        first, second = pool.side_by_side(lambda: self._map_part(rule, a1, safe, shape, s1, o1, single),
                                          lambda: twin._map_part(rule, a2, safe, shape, s2, o2, single))
        self.stats.certified += twin.stats.certified
        self.stats.recomputed += twin.stats.recomputed
        return pool.joined(out, first, second, o1.size)

    def _twin(self) -> Maps:
        """This run for the pool thread: its own counters (added to this run's after each block)
        and kernels (whose scratch arrays serve one thread); the rest shared, read only."""
        twin = copy.copy(self)
        twin.stats = EvalStats()
        if getattr(self, "_twin_kernels", None) is None:
            self._twin_kernels = self.kernels(self.K.p)
        twin.K = self._twin_kernels
        return twin

    def _map_part(
        self, rule: FastRule, args: list[np.ndarray], safe: bool, shape: tuple[int, ...], starts: tuple[int, ...],
        out: np.ndarray, single: bool = False,
    ) -> tuple[np.ndarray, dict[int, Any], Error | None]:
        """``_map_block`` in this thread."""
        K = self.K
        assert rule.fn is not None
        if rule.family == EXACT:
            out[...] = rule.fn(*args)
            return out, {}, None
        bits = buffer("bits", out.shape, np.int64)
        with np.errstate(all="ignore"):
            if rule.family == CERTIFIED:
                ok = self._transcendental(rule, args[0], out, bits, single)
                r = K.round_certified_inplace(out)  # certified elements are no ties
                if not safe:
                    ok &= K.in_range(r)
                n_ok = int(np.count_nonzero(ok))
                self.stats.certified += n_ok
                if n_ok == ok.size:
                    return r, {}, None
            elif safe:
                rule.fn(*args, out=out)
                return K.round_safe_inplace(out, bits), {}, None
            else:
                rule.fn(*args, out=out)
                r = K.round_inplace(out, bits)
                ok = K.in_range(r)
                if ok.all():
                    return r, {}, None
        flagged = np.flatnonzero(~ok.reshape(-1))
        where = np.unravel_index(flagged, r.shape)
        operands = [np.broadcast_to(a, r.shape)[where] for a in args]
        assert rule.exact_zero is not None
        zero = rule.exact_zero(*operands)
        exact = flagged[zero]  # binary64 computed these zeros exactly, with IEEE 754's sign, which is MPFR's
        r.reshape(-1)[exact] = np.copysign(0.0, r.reshape(-1)[exact])
        return self._recompute(rule.kernel, r, flagged[~zero], [o[~zero] for o in operands], shape, starts)

    def _transcendental(self, rule: FastRule, x: np.ndarray, out: np.ndarray, bits: np.ndarray, single: bool) -> np.ndarray:
        """``out`` = the numpy function of x (from binary32 where ``single``); returns the
        certified elements. Converting a p-bit x with |x| in EXP_SINGLE_ARGUMENTS to binary32 and
        the binary32 result back are exact, so only the function's own error counts."""
        K = self.K
        assert rule.fn is not None
        ok = buffer("ok", out.shape, np.bool_)
        if not single:
            rule.fn(x, out=out)
            return K.certify_exp(out, bits, ok)
        x32 = buffer("single", out.shape, np.float32)
        np.copyto(x32, x, casting="same_kind")
        assert rule.single is not None
        rule.single(x32, out=x32)
        np.copyto(out, x32)
        K.certify_exp(out, bits, ok, K.exp_single_threshold)
        retry = np.flatnonzero(~ok.reshape(-1))
        if retry.size:
            y = rule.fn(np.broadcast_to(x, out.shape)[np.unravel_index(retry, out.shape)])
            out.reshape(-1)[retry] = y
            ok.reshape(-1)[retry] = K.certify_exp(y)
        return ok

    def _single(self, rule: FastRule | None, inputs: tuple[int, ...]) -> bool:
        """Whether a transcendental node may start from its binary32 kernel: p is small enough
        for that kernel's certificate, and the operand's bounds lie in EXP_SINGLE_ARGUMENTS."""
        if rule is None or rule.single is None or self.K.exp_single_threshold is None:
            return False
        lo, hi, _, _ = self.ranges.get(inputs[0], UNKNOWN)
        return EXP_SINGLE_ARGUMENTS[0] <= lo and hi <= EXP_SINGLE_ARGUMENTS[1]

    def _recompute(
        self, kernel: str | None, r: np.ndarray, flagged: np.ndarray, operands: list[np.ndarray],
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
                v = F.apply(kernel, *(mp(float(o[j])) for o in operands))
            except FpArithmeticError as e:
                index = element_index(i, r.shape, starts) if shape else ()
                return r, extras, (int(np.ravel_multi_index(index, shape)) if shape else 0, type(e)(f"{e} (element {index})"))
            self._store(flat, extras, i, v)
        return r, extras, None

    @staticmethod
    def _store(flat: np.ndarray, extras: dict[int, Any], i: int, v: Any) -> None:
        f = float(v)
        if f == 0.0 and v == 0 or MIN_NORMAL <= abs(f) <= MAX_FLOAT:
            flat[i] = f
        else:
            flat[i] = np.nan
            extras[i] = v
