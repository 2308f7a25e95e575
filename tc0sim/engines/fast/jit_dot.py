"""Fused product-sum kernels (numba) for the fast engine at p <= 25: a ⊕ of p-bit products
(matmul, linear, conv2d; VAR Lemmas 5.2 and 5.6), with further terms joined (a bias), in one pass
per output on every core (docs/semantics.md §2.8).

Per output, one loop over its terms: the product x·y of two F_p values (exact in binary64: at most
2p <= 50 significant bits) rounded once to p bits on its bit pattern (ties to even, fastfp's
rounding), then added to a binary64 sum and to a binary64 Σ|t|. Neither sum is the result: the
caller certifies each output against the bound 2·k·u·Σ|t| (docs/semantics.md §2.4, valid for any
order of summation) and recomputes the rest exactly, so the bits never depend on the order, the
lanes or the threads. With ``check``, a product whose rounded value is not a non-zero in-range
F_p value and whose operands are both non-zero (over- or underflow) marks its output; the caller
then evaluates the node by the numpy path, which raises the MPFR engine's error in its order.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tc0sim.fastfp import Kernels, compact

MATERIALISED = 1 << 16
"""Elements an operand's rows may add beyond twice its distinct elements."""



@intrinsic
def bits_of(typingctx: Any, x: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def float_of(typingctx: Any, b: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def rounded(t: float, s: int, half_less: int, keep: int) -> float:
    b = bits_of(t)
    return float_of((b + (half_less + ((b >> s) & 1))) & keep)


@numba.njit(cache=True, nogil=True, inline="always")
def out_of_range(r: float, x: float, y: float, lo: int, span: int) -> bool:
    """r is not a non-zero in-range F_p value (unsigned test on |r|'s bits), and x·y != 0."""
    a = np.uint64((bits_of(r) & 0x7FFF_FFFF_FFFF_FFFF) - lo)
    return (a > np.uint64(span)) & (x != 0.0) & (y != 0.0)


@numba.njit(cache=True, nogil=True, parallel=True, fastmath={"reassoc"})
def _dot_sums(
    A: np.ndarray, B: np.ndarray, E: np.ndarray, dims: np.ndarray, sa: np.ndarray, sb: np.ndarray, se: np.ndarray,
    s: int, half_less: int, keep: int, lo: int, span: int, check: bool,
    y: np.ndarray, abs_sum: np.ndarray, bad: np.ndarray,
) -> None:
    """Every output n: row ra of A times row rb of B (indices from n's index in ``dims`` and the
    row strides), each product rounded, summed and |summed| (additions reassociated: any order
    is certified alike), then row re of E; ``check``: flag an out-of-range product."""
    n_out, k, t, m = y.shape[0], A.shape[1], E.shape[1], dims.shape[0]
    for n in numba.prange(n_out):
        ra, rb, re, rest = np.int64(0), np.int64(0), np.int64(0), np.int64(n)
        for d in range(m - 1, -1, -1):
            i = rest % dims[d]
            rest //= dims[d]
            ra += i * sa[d]
            rb += i * sb[d]
            re += i * se[d]
        a, b = A[ra], B[rb]
        total, absolute, flag = 0.0, 0.0, False
        for j in range(k):
            r = rounded(a[j] * b[j], s, half_less, keep)
            total += r
            absolute += abs(r)
            if check:
                flag |= out_of_range(r, a[j], b[j], lo, span)
        for j in range(t):
            total += E[re, j]
            absolute += abs(E[re, j])
        y[n] = total
        abs_sum[n] = absolute
        bad[n] = flag


def _rows(c: np.ndarray, kept: int, reduced: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A compact operand (kept axes first, each full or 1) as a C-contiguous matrix of rows (one
    per distinct kept index, the reduced axes materialised along the row) and its row stride per
    kept axis (0 where the operand is broadcast)."""
    lead = c.shape[:kept]
    rows = np.ascontiguousarray(np.broadcast_to(c, lead + reduced)).reshape(math.prod(lead), math.prod(reduced))
    strides = [math.prod(lead[i + 1:]) if lead[i] > 1 else 0 for i in range(kept)]
    return rows, np.array(strides, dtype=np.int64)


def dot_sums(
    K: Kernels, args: list[np.ndarray], shape: tuple[int, ...], kept: list[int], extra: np.ndarray | None, check: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]] | None:
    """Per output of ⊕(round_p(a·b) over the non-kept axes of ``shape``, then the ``extra``
    terms): binary64 sum, binary64 Σ|t|, the flag of an out-of-range product (with ``check``),
    and the operands' row matrices followed by the extra terms' (for the exact recomputation
    of an output: ``terms``). None where an operand's rows would be much larger than its
    distinct elements (broadcast along the reduced axes: the numpy path is better there)."""
    reduced_axes = [a for a in range(len(shape)) if a not in kept]
    perm = kept + reduced_axes
    out_shape = tuple(shape[a] for a in kept)
    reduced = tuple(shape[a] for a in reduced_axes)
    compacts = [compact(np.broadcast_to(a, shape)).transpose(perm) for a in args]
    lead = [math.prod(c.shape[: len(kept)]) * math.prod(reduced) for c in compacts]
    if any(n > 2 * c.size + MATERIALISED for n, c in zip(lead, compacts)):
        return None
    mats = [_rows(c, len(kept), reduced) for c in compacts]
    if extra is None:
        extra = np.zeros(out_shape + (0,))
    e = compact(np.broadcast_to(extra, out_shape + extra.shape[-1:]))
    E, se = _rows(e, len(kept), extra.shape[-1:])
    n = math.prod(out_shape)
    y, abs_sum, bad = np.empty(n), np.empty(n), np.empty(n, dtype=np.bool_)
    (A, sa), (B, sb) = mats
    _dot_sums(A, B, E, np.array(out_shape, dtype=np.int64), sa, sb, se, K.s, K.half - 1, int(K.keep_mask),
              K.lo_bits, K.hi_bits - K.lo_bits, check, y, abs_sum, bad)
    return y, abs_sum, bad, [A, sa, B, sb, E, se]


def terms(K: Kernels, mats: list[np.ndarray], out_shape: tuple[int, ...], n: int) -> np.ndarray:
    """The terms of output ``n`` (flat index) exactly as the kernel sums them: the rounded
    products, then the extra terms."""
    A, sa, B, sb, E, se = mats
    index = np.array(np.unravel_index(n, out_shape), dtype=np.int64) if out_shape else np.zeros(0, dtype=np.int64)
    products = K.rounded(A[int(index @ sa)] * B[int(index @ sb)])
    return np.concatenate([products, E[int(index @ se)]])
