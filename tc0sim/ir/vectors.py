"""Depth vectors: path lengths counted per symbolic gate depth (docs/dag.md).

A depth vector is a tuple of non-negative ints with one entry per symbol of ``SYMBOLS`` (today
d_std, d_sum, d_prod, d_exp, d_sqrt; the primitive table may add more); e.g. the attention bound of FlowAR Lemma 4.6,
6(d_std + d_sum) + d_exp, is ``(6, 6, 0, 1, 0)``. No order between the symbols is known, so a
set of paths has a set of Pareto-maximal vectors (``pareto_max``), and a claim holds for every
non-negative value of the symbols exactly when every maximal vector is ``leq`` the claim.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Iterable, Mapping
from fractions import Fraction
from typing import Union

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.primitives import QUIET_SYMBOLS, SYMBOLS
from tc0sim.linear import parse_linear

Vec = tuple[int, ...]
Number = Union[int, float, Fraction]


def zero() -> Vec:
    """The zero vector (one 0 per symbol)."""
    return (0,) * len(SYMBOLS)


def _index(symbol: str) -> int | None:
    try:
        return SYMBOLS.index(symbol)
    except ValueError:
        return None


def check(*vectors: Vec) -> None:
    """Refuse a vector whose length is not ``len(SYMBOLS)`` (a ConfigError naming the symbols)."""
    for v in vectors:
        if len(v) != len(SYMBOLS):
            raise ConfigError(f"a depth vector has {len(SYMBOLS)} entries ({', '.join(SYMBOLS)}), got {v!r}")


def vec(**counts: int) -> Vec:
    """``vec(d_std=1, d_sum=1)`` -> (1, 1, 0, 0, 0); an unknown symbol is a ConfigError."""
    return from_dict(counts)


def from_dict(counts: Mapping[str, int]) -> Vec:
    """The vector with the given counts (missing symbols count 0)."""
    out = [0] * len(SYMBOLS)
    for name, count in counts.items():
        position = _index(name)
        if position is None:
            raise ConfigError(f"unknown depth symbol {name!r}; expected one of {', '.join(SYMBOLS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"count of {name} must be a non-negative integer, got {count!r}")
        out[position] = count
    return tuple(out)


def to_dict(v: Vec, full: bool = False, also: Collection[str] = ()) -> dict[str, int]:
    """{symbol: count}; zeros omitted unless ``full`` (even then, those of ``QUIET_SYMBOLS`` not
    in ``also``: a report of several vectors passes the quiet symbols any of them uses, ``used``)."""
    check(v)
    return {s: c for s, c in zip(SYMBOLS, v) if c or (full and (s not in QUIET_SYMBOLS or s in also))}


def used(vectors: Iterable[Vec]) -> set[str]:
    """The symbols with a non-zero count in some vector."""
    return {s for v in vectors for s, c in zip(SYMBOLS, v) if c}


def unit(symbol: str) -> Vec:
    """The vector of one gate of depth ``symbol``."""
    return vec(**{symbol: 1})


def add(a: Vec, b: Vec) -> Vec:
    """Componentwise sum (concatenating two paths)."""
    check(a, b)
    return tuple(x + y for x, y in zip(a, b))


def sub(a: Vec, b: Vec) -> Vec:
    """Componentwise difference (may have negative entries; used when backtracking paths)."""
    check(a, b)
    return tuple(x - y for x, y in zip(a, b))


def leq(a: Vec, b: Vec) -> bool:
    """a ≤ b componentwise: path a is no longer than b for every non-negative symbol values."""
    if len(a) != len(b) or len(a) != len(SYMBOLS):
        check(a, b)
    return all(x <= y for x, y in zip(a, b))


PARETO_NUMPY = 24
"""Sets of more vectors than this are filtered with numpy (``maximal_rows``; the depth interpreter's
gates and substitutions use the same bound), smaller ones in Python."""


def pareto_max(vectors: Iterable[Vec]) -> list[Vec]:
    """The maximal vectors of ``vectors`` under ≤ (duplicates removed), sorted."""
    distinct = set(vectors)
    if any(len(v) != len(SYMBOLS) for v in distinct):
        check(*distinct)
    return maximal(distinct)


def maximal(distinct: set[Vec]) -> list[Vec]:
    """``pareto_max`` of a set of equally long vectors (any length: the depth interpreter's
    shared bodies append one coordinate per argument class).

    Small sets: each vector, in order of decreasing sum, is kept unless a kept one dominates it (a
    vector can only be dominated by one of larger or equal sum). Larger sets: the matrix
    ``le[i, j] = (v_i ≤ v_j)`` of all pairs at once; since the vectors are distinct, v_i is dropped
    exactly when some other v_j has ``le[i, j]``. Both give the same set."""
    if len(distinct) < 2:
        return list(distinct)
    if len(distinct) > PARETO_NUMPY:
        return _pareto_numpy(distinct)
    kept: list[Vec] = []
    for v in sorted(distinct, key=lambda u: (-sum(u), u)):
        if not any(all(map(operator.le, v, k)) for k in kept):
            kept.append(v)
    return sorted(kept)


def _pareto_numpy(distinct: set[Vec]) -> list[Vec]:
    return sorted(tuple(v) for v in maximal_rows(np.array(list(distinct), dtype=np.int64)).tolist())


def maximal_rows(a: np.ndarray, block: int = 128) -> np.ndarray:
    """The rows of an int array of vectors that no row is strictly above (≥ in every entry, with a
    larger sum; equal rows all stay), in order of decreasing sum.

    Only a row of larger sum can be strictly above another, so the rows are taken in order of
    decreasing sum, a block at a time, and each block is compared with the rows kept so far and
    with itself: about n·(kept + block) comparisons instead of n²."""
    if len(a) < 2:
        return a
    sums = a.sum(axis=1)
    order = np.argsort(-sums, kind="stable")
    a, sums = a[order], sums[order]
    varying = a[:, a.max(axis=0) != a.min(axis=0)]  # an entry equal in every row never decides
    kept_rows, kept_sums, kept = varying[:0], sums[:0], []
    for start in range(0, len(a), block):
        rows, row_sums = varying[start : start + block], sums[start : start + block]
        below = ((rows[:, None, :] <= rows[None, :, :]).all(axis=2) & (row_sums[:, None] < row_sums[None, :])).any(axis=1)
        if len(kept_rows):
            below |= ((rows[:, None, :] <= kept_rows[None, :, :]).all(axis=2) & (row_sums[:, None] < kept_sums[None, :])).any(axis=1)
        chosen = np.flatnonzero(~below)
        kept_rows = np.concatenate([kept_rows, rows[chosen]])
        kept_sums = np.concatenate([kept_sums, row_sums[chosen]])
        kept.append(start + chosen)
    return a[np.concatenate(kept)]


def dot(v: Vec, values: Mapping[str, Number]) -> Number:
    """The weighted length Σ v_s · values[s]; every symbol with a non-zero count needs a value."""
    check(v)
    total: Number = 0
    for s, c in zip(SYMBOLS, v):
        if c:
            if s not in values:
                raise ConfigError(f"no value given for depth symbol {s}")
            total += c * values[s]
    unknown = [s for s in values if s not in SYMBOLS]
    if unknown:
        raise ConfigError(f"unknown depth symbol(s) {', '.join(unknown)}; expected {', '.join(SYMBOLS)}")
    return total


def fmt(v: Vec) -> str:
    """'3 d_std + 3 d_sum + d_exp' (coefficient 1 omitted); '0' for the zero vector."""
    check(v)
    terms = [(s if c == 1 else f"{c} {s}") for s, c in zip(SYMBOLS, v) if c]
    return " + ".join(terms) if terms else "0"


def as_vec(claim: Vec | Mapping[str, int] | str) -> Vec:
    """A vector from a vector, a {symbol: count} dict or a linear form string such as
    '6 d_std + 6 d_sum + d_exp' (``tc0sim.linear``; a ConfigError giving the position if malformed)."""
    if isinstance(claim, str):
        return parse_linear(claim, SYMBOLS)
    if isinstance(claim, Mapping):
        return from_dict(claim)
    v = tuple(int(c) for c in claim)
    check(v)
    return v
