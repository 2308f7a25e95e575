"""The fused product-sum kernel (numba) for 26 <= p <= 53: a ⊕ of p-bit products (matmul,
linear, conv2d; VAR Lemmas 5.2 and 5.6), with further terms joined (a bias), one pass per output
on every core (docs/fuseddot.md, "Precisions 26 to 53").

Per output: each product x·y of two F_p values is split exactly into s + e (s = fl(x·y), e by
Dekker's product with Veltkamp's split: exact when nothing over- or underflows, checked below) and
rounded once to p bits by Theorem 1 of docs/semantics.md §2.7 (s rounded on its bit pattern, a
p-bit midpoint s rounded to e's side; for p = 53 the product is s itself). The rounded products and
the joined terms are then summed by the certified row sum of tc0sim.ddjit (error-free extraction,
else the compensated sum, each with Theorem 2's certificate), exactly as the engine sums a held
row. An output neither certifies is marked; the caller sums it by MPFR. A product whose operands
are both non-zero and whose magnitude or operands lie where the split is not proven exact marks
the whole node ``bad``: the caller then takes the unfused path, which meets such products as the
MPFR engine does (its errors, in its order).

No fast-math: every operation rounds once, as the proofs assume. Outputs are independent, so the
bits do not depend on the tiling or the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

from tc0sim.ddjit import LAUNCH, _product_error, _round_p
from tc0sim.ddsum import compensated_row, extracted_row
from tc0sim.engines.fast.jit_dot import Dot, tile_origin

SPLIT_LIMIT = 2.0**995
"""Operands below this in magnitude: Veltkamp's split (2^27 + 1)·x does not overflow."""

PRODUCT_LOW = 2.0**-968
"""Products at least this large in magnitude: the exponents of x and y add up to at least
−970 = e_min + 52, so Dekker's error term is exact (no partial product underflows)."""

PRODUCT_HIGH = 2.0**1022
"""Products below this: no partial product of Dekker's algorithm overflows."""


@numba.njit(cache=True, nogil=True, parallel=True)
def _dot_rounded(
    A: np.ndarray, B: np.ndarray, E: np.ndarray, nb: int, na: int, nbb: int, ti: int, tj: int, p: int, c: int,
    out: np.ndarray, uncertain: np.ndarray, bad: np.ndarray,
) -> None:
    """Output (g, i, j) of a batched A·Bᵀ (row g·na + i of A times row g·nbb + j of B, then row
    (g·na + i)·nbb + j of E): round_p of the exact sum of the p-bit products and the extra terms,
    certified (``uncertain`` False) or not; ``bad``: a product outside the proven range. ``c``:
    2^c >= 2·(terms per output), the extraction's parameter. One tile of ti × tj outputs per
    parallel iteration, with its own buffer of terms."""
    k, t = A.shape[1], E.shape[1]
    tiles_i, tiles_j = (na + ti - 1) // ti, (nbb + tj - 1) // tj
    for w in numba.prange(nb * tiles_i * tiles_j):
        terms = np.empty(k + t)
        g, i0, j0 = tile_origin(w, tiles_i, tiles_j, ti, tj)
        for i in range(i0, min(na, i0 + ti)):
            a = A[g * na + i]
            for j in range(j0, min(nbb, j0 + tj)):
                b = B[g * nbb + j]
                n = (g * na + i) * nbb + j
                flag = False
                for q in range(k):
                    x, y = a[q], b[q]
                    s = x * y
                    m = abs(s)
                    flag |= (x != 0.0) & (y != 0.0) & (
                        (m < PRODUCT_LOW) | (m >= PRODUCT_HIGH) | (abs(x) >= SPLIT_LIMIT) | (abs(y) >= SPLIT_LIMIT))
                    terms[q] = _round_p(s, _product_error(x, y, s), p)
                for q in range(t):
                    terms[k + q] = E[n, q]
                bad[n] = flag
                if flag:
                    out[n], uncertain[n] = np.nan, True
                    continue
                r, ok = extracted_row(terms, p, c)
                if not ok:
                    r, ok = compensated_row(terms, p)
                out[n], uncertain[n] = r, not ok


def rounded_sums(dot: Dot, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output of ``dot`` in the node's row-major order: round_p of its exact sum (NaN where not
    certified), whether it is uncertified, whether a product left the proven range; on every core."""
    n, terms = dot.E.shape[0], dot.k + dot.E.shape[1]
    c = 0
    while (1 << c) < 2 * terms:
        c += 1
    out, uncertain, bad = np.empty(n), np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    with LAUNCH:
        _dot_rounded(dot.A, dot.B, dot.E, dot.nb, dot.na, dot.nbb, dot.tile(), dot.tile(), p, c, out, uncertain, bad)
    return dot.in_output_order(out), dot.in_output_order(uncertain), dot.in_output_order(bad)
