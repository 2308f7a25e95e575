"""Exact norms and distances of rows of dyadic rationals (float64 or p-bit values).

Every value ``x`` of a float format is ``m · 2^e`` with integers m, e, so a set of rows is written
exactly as integer rows times one common power of two (:class:`DyadicRows`). Squared norms and
squared distances are then exact integers, and a norm is reported as the correctly rounded float64
of its square root (:func:`sqrt_float`: integer square root with enough bits, then one rounding).

Minimum distances over many pairs are found in two stages: a float64 screen (numpy, blockwise)
computes every distance with a rigorous error bound, and only the pairs whose lower bound does not
exceed the smallest upper bound are verified exactly. The bound: a row is converted to float64 by
one correct rounding per coordinate (relative error ≤ u = 2⁻⁵³, or an absolute 2⁻¹⁰⁷⁵ below the
normal range), so a converted row is within ``e = 1.01·u‖y‖ + √d·2⁻¹⁰⁷⁴`` of the exact one; the
float64 difference, squares and sum add a relative ``(d + 5)u`` and, from squares that fall below
the normal range, an absolute ``√d·2⁻⁵³⁶`` (rows are scaled so the largest coordinate is near 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError

UNIT_ROUNDOFF = 2.0**-53
SCREEN_BLOCK_ELEMENTS = 1 << 22
"""Largest number of float64 coordinates one screening block holds (about 32 MB)."""
SCREEN_BLOCK_ROWS = 256
"""Rows per screening block (small blocks let the sweep window shrink early)."""
SQRT_GUARD_BITS = 64
"""The integer square root carries at least this many bits before the one rounding to float64."""


def dyadic(x: Any) -> tuple[int, int]:
    """``(m, k)`` with x = m / 2^k exactly, for a float, mpfr, Fraction or int with a power-of-2 denominator."""
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(float(x)):
            raise ConfigError(f"value {x!r} is not a finite real number")
        num, den = float(x).as_integer_ratio()
    elif isinstance(x, Fraction):
        num, den = x.numerator, x.denominator
    elif isinstance(x, (int, np.integer)):
        num, den = int(x), 1
    else:
        num, den = (int(v) for v in x.as_integer_ratio())
    k = den.bit_length() - 1
    if den != 1 << k:
        raise ConfigError(f"value {x!r} is not a dyadic rational (its denominator is not a power of 2)")
    return num, k


@dataclass(frozen=True)
class DyadicRows:
    """Rows of exact values ``ints[i][c] · 2^(−shift)``."""

    ints: tuple[tuple[int, ...], ...]
    shift: int

    @classmethod
    def from_values(cls, rows: Iterable[Sequence[Any]]) -> DyadicRows:
        pairs = [[dyadic(x) for x in row] for row in rows]
        shift = max((k for row in pairs for _, k in row), default=0)
        ints = tuple(tuple(m << (shift - k) for m, k in row) for row in pairs)
        return cls(ints, shift)

    def __len__(self) -> int:
        return len(self.ints)

    def squared_norm(self, i: int) -> int:
        """‖row i‖² · 4^shift, an exact integer."""
        return sum(m * m for m in self.ints[i])

    def squared_distance(self, i: int, j: int) -> int:
        """‖row i − row j‖² · 4^shift, an exact integer."""
        return sum((a - b) * (a - b) for a, b in zip(self.ints[i], self.ints[j]))

    def norm(self, squared: int) -> float:
        """The correctly rounded float64 of √(squared / 4^shift)."""
        return sqrt_float(squared, 1 << (2 * self.shift))

    def approximations(self) -> tuple[np.ndarray, int]:
        """``(Y, s)``: float64 rows, each coordinate the correctly rounded ``int / 2^s``, s chosen
        so the largest magnitude is near 1 (no overflow). Distances in Y are 2^(shift − s) times smaller."""
        top = max((abs(m).bit_length() for row in self.ints for m in row), default=0)
        s = top
        d = len(self.ints[0]) if self.ints else 0
        y = np.empty((len(self.ints), d), dtype=np.float64)
        scale = 1 << s
        for i, row in enumerate(self.ints):
            y[i] = [m / scale for m in row]
        return y, s


def sqrt_float(num: int, den: int) -> float:
    """The float64 nearest to √(num/den) (ties to even), for integers num ≥ 0 and den > 0.

    ``r = ⌊√(num·4^k/den)⌋`` with r ≥ 2^64; when the root is not exact it lies strictly inside
    ``(r, r + 1)·2^−k``, an interval that contains no rounding boundary of the 53-bit format, so
    rounding ``(r + 1/2)·2^−k`` (Python's int/int division rounds correctly) gives the answer.
    A root beyond the float64 range rounds to infinity (IEEE 754 round to nearest).
    """
    if num < 0 or den <= 0:
        raise ConfigError(f"sqrt_float needs num >= 0 and den > 0, got {num}/{den}")
    if num == 0:
        return 0.0
    k = max(0, (2 * SQRT_GUARD_BITS + 2 - (num.bit_length() - den.bit_length())) // 2 + 1)
    while True:
        scaled = num << (2 * k)
        t = scaled // den
        r = math.isqrt(t)
        if r.bit_length() > SQRT_GUARD_BITS:
            break
        k += SQRT_GUARD_BITS
    try:
        if r * r == t and t * den == scaled:
            return r / (1 << k)
        return (2 * r + 1) / (1 << (k + 1))
    except OverflowError:  # Python's int/int division refuses what round to nearest makes infinite
        return math.inf


def sqrt_fraction(x: Fraction) -> float:
    """The correctly rounded float64 of √x for a rational x ≥ 0."""
    return sqrt_float(x.numerator, x.denominator)


def float_up(x: float) -> float:
    """The next float64 above x (to turn a correctly rounded value into an upper bound)."""
    return math.nextafter(x, math.inf)


@dataclass(frozen=True)
class MinPair:
    """The minimum distance over the pairs that count: the exact squared value and every minimal pair."""

    squared: int | None
    pairs: tuple[tuple[int, int], ...]
    candidates: int
    counted_pairs: int


def min_distance(rows: DyadicRows, keys: Sequence[int] | None = None) -> MinPair:
    """Minimum of ‖row i − row j‖ over i < j with ``keys[i] != keys[j]`` (integer group ids; all
    pairs when keys is None).

    Screened in float64 with the error bound of the module docstring; the candidates are verified
    with exact integers. ``squared`` is None when no pair counts.
    """
    m = len(rows)
    if m < 2:
        return MinPair(None, (), 0, 0)
    y, _ = rows.approximations()
    d = y.shape[1]
    key_ids = np.arange(m) if keys is None else np.asarray(keys, dtype=np.int64)
    row_norm = np.sqrt(np.einsum("ij,ij->i", y, y))
    row_err = UNIT_ROUNDOFF * row_norm * 1.01 + math.sqrt(d) * 2.0**-1074  # 1.01 covers the float64 norm's own error
    rho = (d + 5) * UNIT_ROUNDOFF * 1.01
    tau = math.sqrt(d) * 2.0**-536
    sizes = np.unique(key_ids, return_counts=True)[1]
    counted = m * (m - 1) // 2 - int(sum(int(g) * (int(g) - 1) // 2 for g in sizes))
    if counted == 0:
        return MinPair(None, (), 0, 0)
    # sweep along the coordinate of largest spread: a pair whose coordinates there differ by more
    # than best_upper + 2·max(row_err) (plus the rounding of that test) cannot be the minimum
    axis = int(np.argmax(y.max(axis=0) - y.min(axis=0))) if d else 0
    order = np.argsort(y[:, axis], kind="stable")
    ys, errs, keys_sorted = y[order], row_err[order], key_ids[order]
    coord = ys[:, axis]
    reach = 2 * float(row_err.max()) + 4 * UNIT_ROUNDOFF
    block = max(1, min(SCREEN_BLOCK_ROWS, SCREEN_BLOCK_ELEMENTS // max(1, m * d)))
    best_upper = _neighbour_upper(ys, errs, keys_sorted, tau, rho)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, m, block):
        stop = min(m, start + block)
        window = (best_upper + reach) * (1 + 1e-12)
        hi = m if math.isinf(window) else int(np.searchsorted(coord, coord[stop - 1] + window, side="right"))
        hi = max(hi, stop)
        diff = ys[start:stop, None, :] - ys[None, start:hi, :]
        dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        mask = np.arange(start, hi)[None, :] > np.arange(start, stop)[:, None]
        mask &= keys_sorted[start:stop, None] != keys_sorted[None, start:hi]
        if not mask.any():
            continue
        slack = errs[start:stop, None] + errs[None, start:hi] + tau
        lower = np.maximum(dist - slack, 0.0) / (1 + rho)
        upper = (dist + slack) / (1 - rho)
        best_upper = min(best_upper, float(upper[mask].min()))
        pick = mask & (lower <= best_upper)
        ii, jj = np.nonzero(pick)
        kept.append((order[ii + start], order[jj + start], lower[pick]))
    best: int | None = None
    minimal: list[tuple[int, int]] = []
    candidates = 0
    for ii, jj, low in kept:
        for a, b in zip(ii[low <= best_upper].tolist(), jj[low <= best_upper].tolist()):
            i, j = min(a, b), max(a, b)
            candidates += 1
            sq = rows.squared_distance(i, j)
            if best is None or sq < best:
                best, minimal = sq, [(i, j)]
            elif sq == best:
                minimal.append((i, j))
    return MinPair(best, tuple(minimal), candidates, counted)


def _neighbour_upper(ys: np.ndarray, errs: np.ndarray, keys: np.ndarray, tau: float, rho: float) -> float:
    """An upper bound on the minimum from the pairs of rows adjacent in the sweep order (inf if none count)."""
    diff = ys[1:] - ys[:-1]
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    upper = (dist + errs[1:] + errs[:-1] + tau) / (1 - rho)
    counts = keys[1:] != keys[:-1]
    return float(upper[counts].min()) if counts.any() else math.inf


def to_fraction(x: Any) -> Fraction:
    """The exact rational value of a float, mpfr or Fraction."""
    m, k = dyadic(x)
    return Fraction(m, 1 << k)


def squared_frobenius(a: np.ndarray, b: np.ndarray | None = None) -> Fraction:
    """‖a‖_F² (or ‖a − b‖_F²) exactly, for arrays of floats or mpfr values (integers on one scale)."""
    flat_a = np.asarray(a, dtype=object).ravel().tolist()
    flat_b = [] if b is None else np.asarray(b, dtype=object).ravel().tolist()
    if b is not None and len(flat_a) != len(flat_b):
        raise ConfigError(f"cannot compare arrays of {len(flat_a)} and {len(flat_b)} values")
    pairs = [dyadic(x) for x in flat_a + flat_b]
    shift = max((k for _, k in pairs), default=0)
    ints = [m << (shift - k) for m, k in pairs]
    if b is None:
        total = sum(m * m for m in ints)
    else:
        half = len(flat_a)
        total = sum((x - y) * (x - y) for x, y in zip(ints[:half], ints[half:]))
    return Fraction(total, 1 << (2 * shift))


def norm_up(squared: Fraction) -> float:
    """A float64 upper bound on √squared (the correctly rounded root, one step up unless exact)."""
    root = sqrt_fraction(squared)
    return root if Fraction(root) ** 2 == squared else float_up(root)
