"""A ⊕ of float64 terms over one run of adjacent axes (numba, every core): per output the binary64
sum, the binary64 Σ|t| and the smallest non-zero |term|, in one pass over the terms
(docs/benchmarks.md, "a VAR-d16 image, where the time goes"; docs/fuseddot.md, the exactness test).

None of these is the result: the caller certifies each output against the bound 2·k·u·Σ|t|
(docs/semantics.md §2.4) or as an exact sum (tc0sim.engines.fast.jit_dot.exact), both valid for any
order of summation, and recomputes the rest exactly, so the bits never depend on the order, the
lanes or the threads. It replaces numpy's sum and, for outputs a loose bound leaves uncertified,
the gathered copy of their terms that numpy needs for Σ|t| and the exactness test.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from tc0sim.engines.fast.jit_dot import _LAUNCH, NO_TERM, exact, magnitude_bits

LANES = 512
"""Outputs along the trailing kept axis that one parallel iteration sums side by side."""


@numba.njit(cache=True, nogil=True, parallel=True, fastmath={"reassoc"})
def _axis_sums(t: np.ndarray, y: np.ndarray, abs_sum: np.ndarray, low: np.ndarray) -> None:
    """Output (a, b) of terms t[a, :, b]: binary64 sum, Σ|t| (additions reassociated: any order is
    certified alike) and the bits of the smallest non-zero |term| (NO_TERM if none)."""
    na, k, nb = t.shape
    tiles = (nb + LANES - 1) // LANES
    for w in numba.prange(na * tiles):
        a, b0 = w // tiles, (w % tiles) * LANES
        b1 = min(nb, b0 + LANES)
        if nb == 1:
            total, absolute, smallest = -0.0, 0.0, NO_TERM  # −0: the identity of +, so a sum of −0 terms is −0 (MPFR)
            for q in range(k):
                v = t[a, q, 0]
                total += v
                absolute += abs(v)
                smallest = min(smallest, magnitude_bits(v))
            y[a, 0], abs_sum[a, 0], low[a, 0] = total, absolute, smallest
            continue
        for b in range(b0, b1):
            y[a, b], abs_sum[a, b], low[a, b] = -0.0, 0.0, NO_TERM
        for q in range(k):
            for b in range(b0, b1):
                v = t[a, q, b]
                y[a, b] += v
                abs_sum[a, b] += abs(v)
                low[a, b] = min(low[a, b], magnitude_bits(v))


def as_runs(terms: np.ndarray, axes: tuple[int, ...]) -> np.ndarray | None:
    """The float64 ``terms`` as a view [before, reduced, after] (the ``axes`` adjacent), or None
    if they are not adjacent or the view would need a copy."""
    shape = terms.shape
    if terms.dtype != np.float64 or not axes or list(axes) != list(range(min(axes), max(axes) + 1)):
        return None
    a, k, b = math.prod(shape[: min(axes)]), math.prod(shape[ax] for ax in axes), math.prod(shape[max(axes) + 1:])
    if a * b == 0 or k == 0:
        return None
    view = terms.view()
    try:
        view.shape = (a, k, b)  # raises rather than copies
    except AttributeError:
        return None
    return view


def axis_sums(terms: np.ndarray, axes: tuple[int, ...], p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Flat (row-major over the kept axes) binary64 sums, Σ|t| and whether the sum is exact in any
    order (tc0sim.engines.fast.jit_dot.exact) of the p-bit float64 ``terms`` over ``axes``; None
    when ``as_runs`` is (then numpy's path is taken)."""
    view = as_runs(terms, axes)
    if view is None:
        return None
    a, _, b = view.shape
    y, abs_sum, low = np.empty((a, b)), np.empty((a, b)), np.empty((a, b), dtype=np.int64)
    with _LAUNCH:
        _axis_sums(view, y, abs_sum, low)
    return y.reshape(-1), abs_sum.reshape(-1), exact(p, abs_sum, low).reshape(-1)
