"""Fused product-sum kernels (numba) for the fast engine at p <= 25: a ⊕ of p-bit products
(matmul, linear, conv2d; VAR Lemmas 5.2 and 5.6), with further terms joined (a bias), in one pass
per output on every core (docs/fuseddot.md, to be §2.8 of docs/semantics.md).

Per output, one loop over its terms: the product x·y of two F_p values (exact in binary64: at most
2p <= 50 significant bits) rounded once to p bits on its bit pattern (ties to even, fastfp's
rounding), then added to a binary64 sum and to a binary64 Σ|t|, beside the smallest non-zero
|term|. Neither sum is the result: the caller certifies each output against the bound 2·k·u·Σ|t|
(docs/semantics.md §2.4) or as an exact sum (``exact``), both valid for any order of summation,
and recomputes the rest exactly, so the bits never depend on the order, the lanes or the threads.
With ``check``, a product whose rounded value is not a non-zero in-range F_p value and whose
operands are both non-zero (over- or underflow) marks its output; the caller then evaluates the
node by the numpy path, which raises the MPFR engine's error in its order.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tc0sim.ddjit import LAUNCH as _LAUNCH  # numba's threading layer and the one launch lock
from tc0sim.engines.fast.memory import MATERIALISED
from tc0sim.fastfp import Kernels, compact


@intrinsic
def bits_of(typingctx: Any, x: Any) -> Any:
    """The int64 bit pattern of a float64 (a bitcast, no conversion)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def float_of(typingctx: Any, b: Any) -> Any:
    """The float64 of an int64 bit pattern."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def rounded(t: float, s: int, half_less: int, keep: int) -> float:
    """t (zero or normal) rounded to p = 53 − s bits, ties to even (tc0sim.fastfp.Kernels.round_inplace)."""
    b = bits_of(t)
    return float_of((b + (half_less + ((b >> s) & 1))) & keep)


@numba.njit(cache=True, nogil=True, inline="always")
def out_of_range(r: float, x: float, y: float, lo: int, span: int) -> bool:
    """r is not a non-zero in-range F_p value (unsigned test on |r|'s bits), and x·y != 0."""
    a = np.uint64((bits_of(r) & 0x7FFF_FFFF_FFFF_FFFF) - lo)
    return (a > np.uint64(span)) & (x != 0.0) & (y != 0.0)


@numba.njit(cache=True, nogil=True, inline="always")
def tile_origin(w: int, tiles_i: int, tiles_j: int, ti: int, tj: int) -> tuple[int, int, int]:
    """Tile ``w`` of a batched A·Bᵀ cut in tiles of ti × tj outputs: its batch and first rows of A and B."""
    g, rest = w // (tiles_i * tiles_j), w % (tiles_i * tiles_j)
    return g, (rest // tiles_j) * ti, (rest % tiles_j) * tj


NO_TERM = np.int64(0x7FF0_0000_0000_0000)
"""``low`` of an output without a non-zero term (the bits of +inf, above every finite term)."""


@numba.njit(cache=True, nogil=True, inline="always")
def magnitude_bits(r: float) -> int:
    """The bits of |r| (monotone in |r|), NO_TERM for a zero."""
    b = bits_of(r) & 0x7FFF_FFFF_FFFF_FFFF
    return b if b != 0 else NO_TERM


@numba.njit(cache=True, nogil=True, parallel=True, fastmath={"reassoc"})
def _dot_sums(
    A: np.ndarray, B: np.ndarray, E: np.ndarray, nb: int, na: int, nbb: int, ti: int, tj: int,
    s: int, half_less: int, keep: int, lo: int, span: int, check: bool,
    y: np.ndarray, abs_sum: np.ndarray, low: np.ndarray, bad: np.ndarray,
) -> None:
    """Output (g, i, j) of a batched A·Bᵀ: row g·na + i of A times row g·nbb + j of B, each product
    rounded, summed and |summed| (additions reassociated: any order is certified alike), then
    row (g·na + i)·nbb + j of E; ``low``: the bits of the smallest non-zero |term| (NO_TERM if
    none); ``check``: flag an out-of-range product. Tiles of ti × tj outputs keep their rows in
    the core's cache; one tile per parallel iteration."""
    k, t = A.shape[1], E.shape[1]
    tiles_i, tiles_j = (na + ti - 1) // ti, (nbb + tj - 1) // tj
    for w in numba.prange(nb * tiles_i * tiles_j):
        g, i0, j0 = tile_origin(w, tiles_i, tiles_j, ti, tj)
        for i in range(i0, min(na, i0 + ti)):
            a = A[g * na + i]
            for j in range(j0, min(nbb, j0 + tj)):
                b = B[g * nbb + j]
                n = (g * na + i) * nbb + j
                total, absolute, smallest, flag = -0.0, 0.0, NO_TERM, False  # −0, the identity of +: MPFR's sign for a sum of −0 terms
                for q in range(k):
                    r = rounded(a[q] * b[q], s, half_less, keep)
                    total += r
                    absolute += abs(r)
                    smallest = min(smallest, magnitude_bits(r))
                    if check:
                        flag |= out_of_range(r, a[q], b[q], lo, span)
                for q in range(t):
                    total += E[n, q]
                    absolute += abs(E[n, q])
                    smallest = min(smallest, magnitude_bits(E[n, q]))
                y[n] = total
                abs_sum[n] = absolute
                low[n] = smallest
                bad[n] = flag


TILE_BYTES = 1 << 17
"""Bytes of each operand's rows in one tile (two tiles' rows stay in a core's 1 MB L2 cache)."""


class Dot:
    """A ⊕ of p-bit products a·b over the non-kept axes of ``shape`` (then ``extra`` terms per
    output) as a batched A·Bᵀ: the kept axes grouped as batch (both operands vary), rows of A
    (B broadcast) and rows of B (A broadcast), in that order (``order``)."""

    def __init__(self, args: list[np.ndarray], shape: tuple[int, ...], kept: list[int], extra: np.ndarray | None) -> None:
        reduced = [a for a in range(len(shape)) if a not in kept]
        self.out_shape = tuple(shape[a] for a in kept)
        ca, cb = (compact(np.broadcast_to(x, shape)) for x in args)
        varies = lambda c, i: c.shape[kept[i]] > 1  # noqa: E731
        batch = [i for i in range(len(kept)) if varies(ca, i) and varies(cb, i)]
        b_rows = [i for i in range(len(kept)) if varies(cb, i) and not varies(ca, i)]
        a_rows = [i for i in range(len(kept)) if i not in batch and i not in b_rows]
        self.order = batch + a_rows + b_rows
        size = lambda axes: math.prod(self.out_shape[i] for i in axes)  # noqa: E731
        self.nb, self.na, self.nbb = size(batch), size(a_rows), size(b_rows)
        self.k = math.prod(shape[a] for a in reduced)
        axes = [kept[i] for i in self.order] + reduced
        lead = [self.out_shape[i] for i in self.order]
        a_lead = lead[: len(batch) + len(a_rows)] + [1] * len(b_rows)
        b_lead = lead[: len(batch)] + [1] * len(a_rows) + lead[len(batch) + len(a_rows):]
        tail = [shape[a] for a in reduced]
        self.fits = all(math.prod(m) * self.k <= 2 * c.size + MATERIALISED for m, c in ((a_lead, ca), (b_lead, cb)))
        t = 0 if extra is None else extra.shape[-1]
        self.fits = self.fits and (t == 0 or t * math.prod(lead) <= 4 * math.prod(lead) + MATERIALISED)
        if not self.fits:
            return
        self.A = np.ascontiguousarray(np.broadcast_to(ca.transpose(axes), a_lead + tail)).reshape(self.nb * self.na, self.k)
        self.B = np.ascontiguousarray(np.broadcast_to(cb.transpose(axes), b_lead + tail)).reshape(self.nb * self.nbb, self.k)
        n = math.prod(lead)
        self.E = np.zeros((n, 0)) if extra is None else np.ascontiguousarray(
            np.broadcast_to(extra, self.out_shape + (t,)).transpose(self.order + [len(kept)])).reshape(n, t)

    def sums(self, K: Kernels, check: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per output in row-major order: binary64 sum, binary64 Σ|t|, whether that sum is exact
        (``exact``) and (``check``) the flag of an out-of-range product, computed on every core."""
        n = self.E.shape[0]
        y, abs_sum, low, bad = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.bool_)
        with _LAUNCH:
            _dot_sums(self.A, self.B, self.E, self.nb, self.na, self.nbb, self.tile(), self.tile(),
                      K.s, K.half - 1, int(K.keep_mask), K.lo_bits, K.hi_bits - K.lo_bits, check, y, abs_sum, low, bad)
        y, abs_sum, ok, bad = (self.in_output_order(v) for v in (y, abs_sum, exact(K.p, abs_sum, low), bad))
        return y, abs_sum, ok, bad

    def tile(self) -> int:
        """Rows of A (and of B) in one tile: TILE_BYTES of each, at most 64."""
        return min(64, max(1, TILE_BYTES // (8 * max(1, self.k))))

    def in_output_order(self, v: np.ndarray) -> np.ndarray:
        """Per-output values computed in the kernel's order (batch, rows of A, rows of B), flat in
        the node's row-major order."""
        back = np.argsort(self.order)
        lead = [self.out_shape[i] for i in self.order]
        return np.ascontiguousarray(v.reshape(lead).transpose(back)).reshape(-1)

    def rows(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The operand rows and extra terms of output ``i`` (row-major flat index)."""
        index = np.unravel_index(i, self.out_shape) if self.out_shape else ()
        lead = [self.out_shape[o] for o in self.order]
        n = int(np.ravel_multi_index([index[o] for o in self.order], lead)) if lead else 0
        g, ia, ib = n // (self.na * self.nbb), (n // self.nbb) % self.na, n % self.nbb
        return self.A[g * self.na + ia], self.B[g * self.nbb + ib], self.E[n]

    def terms(self, K: Kernels, i: int) -> np.ndarray:
        """The terms of output ``i`` as the kernel sums them: the rounded products, then the extra terms."""
        a, b, e = self.rows(i)
        return np.concatenate([K.rounded(a * b), e])


def exact(p: int, abs_sum: np.ndarray, low: np.ndarray) -> np.ndarray:
    """True where a binary64 sum of p-bit terms is exact in any order: every term is a multiple of
    2^L, L = E − p + 1 for the smallest non-zero |term| in [2^E, 2^(E+1)), and Σ|t| < 2^(L+52), so
    every partial sum is a multiple of 2^L below 2^(L+52), a float64 (docs/semantics.md §2.4).
    On exponent fields: Σ|t| (normal, or 0 when no term is non-zero) has a field below E's + 53 − p.
    Σ|t| computed in binary64 is exact in that case, and >= 2^(L+52) otherwise (monotone rounding)."""
    fields = abs_sum.view(np.int64) >> 52
    return (low == NO_TERM) | (fields - (low >> 52) < 53 - p)
