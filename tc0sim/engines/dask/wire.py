"""Values on the wire between the client and the Dask workers: integer arrays (a ``Wire``: per
element Σ_i m_i·2^e_i, one int64 pair per binary64 term of an exact expansion, or one exact pair
beyond binary64's range), converted to and from mpfr values exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gmpy2
import numpy as np

from tc0sim.fp import Format
from tc0sim.ir.graph import Node
from tc0sim.ir.wiring import move

Wire = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]
"""Integer arrays (m_1..m_k, e_1..e_k) of one shape: each element's value is Σ_i m_i·2^e_i."""


@dataclass
class Pairs:
    """A node's F_p values kept as integer arrays (a ``Wire``), until the client itself needs
    mpfr objects (then converted once, ``objects``): the operands and results of the nodes run
    on the cluster need no conversion in the client."""

    m: tuple[np.ndarray, ...]
    e: tuple[np.ndarray, ...]
    objects: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.m[0].shape

    def each(self, fn: Any) -> Pairs:
        """The same function applied to every integer array (wiring, compaction, slicing)."""
        return Pairs(tuple(map(fn, self.m)), tuple(map(fn, self.e)))


def float_pairs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, e) int64 arrays with m·2^e = x exactly, for finite float64 x (numpy.frexp)."""
    mant, ex = np.frexp(x)
    return np.ldexp(mant, 53).astype(np.int64), ex.astype(np.int64) - 53


def float_terms(F: Format, flat: list[Any]) -> list[np.ndarray] | None:
    """k = ⌈p/53⌉ float64 arrays whose sum is exactly each value of ``flat`` (a float64
    expansion: term i is the rest after terms 1..i-1 rounded to binary64, the rests computed
    exactly at precision p), or None if some value is beyond binary64's range.

    Why it is exact: a value's bits span [E - p + 1, E]. A normal term is the rest rounded to
    53 bits, so the next rest is a multiple of 2^(E-p+1) below half an ulp of that term: it
    spans at most 53 fewer bits. After k - 1 normal terms at most 53 bits remain, which the last
    term holds exactly. So it is enough to check that every term is finite and normal, or zero
    where the rest it came from is zero (checked for those elements one by one)."""
    n = len(flat)
    k = -(-F.p // 53)
    sub = F._wide.sub
    terms, rest = [], flat
    for i in range(k):
        term = np.fromiter(map(float, rest), np.float64, n)
        if not np.isfinite(term).all():
            return None
        tiny = np.flatnonzero(np.abs(term) < 2.0**-1022)
        if any(rest[j] != 0 for j in tiny.tolist()):
            return None
        terms.append(term)
        if i + 1 < k:
            rest = list(map(sub, rest, term.tolist()))
    return terms


def exact_floats(m: np.ndarray, e: np.ndarray) -> np.ndarray | None:
    """The float64 array m·2^e if every element is exactly a binary64 value, else None
    (certified: |m| <= 2^53 converts exactly, and scaling back by 2^-e gives m again)."""
    if m.dtype != np.int64 or m.size and np.abs(m).max() > 2**53:
        return None
    mf = m.astype(np.float64)
    scale = np.clip(e, -4000, 4000)
    with np.errstate(over="ignore", under="ignore"):
        x = np.ldexp(mf, scale)
        return x if np.array_equal(np.ldexp(x, -scale), mf) else None


def to_pairs(F: Format, values: np.ndarray | Pairs) -> Wire:
    """The Wire of F_p values: one int64 [m, e] pair per float64 term of their expansion
    (``float_terms``), or where that is not exact one exact pair (m a Python int for p > 62)."""
    if isinstance(values, Pairs):
        return values.m, values.e
    arr = np.asarray(values, dtype=object)
    flat = arr.ravel().tolist()
    terms = float_terms(F, flat)
    if terms is not None:
        pairs = [float_pairs(t.reshape(arr.shape)) for t in terms]
        return tuple(m for m, _ in pairs), tuple(e for _, e in pairs)
    exact = [v.as_mantissa_exp() if v != 0 else (0, 0) for v in flat]
    dtype = np.int64 if F.p <= 62 else object
    m = np.array([int(a) for a, _ in exact], dtype=dtype).reshape(arr.shape)
    e = np.array([int(b) for _, b in exact], dtype=np.int64).reshape(arr.shape)
    return (m,), (e,)


def from_pairs(F: Format, ms: tuple[np.ndarray, ...], es: tuple[np.ndarray, ...]) -> np.ndarray:
    """Object array of the mpfr values Σ_i m_i·2^e_i (exact: every Wire holds F_p values, and
    each partial sum of an expansion fits in p bits, so every addition below is exact)."""
    shape = ms[0].shape
    ctx = F._wide
    acc: list[Any] | None = None
    for m, e in zip(ms, es):
        x = exact_floats(m, e)
        if x is not None:
            term = x.ravel().tolist()
        else:
            mpfr, mul_2exp, p = gmpy2.mpfr, ctx.mul_2exp, F.p
            term = [mul_2exp(mpfr(int(a), p), int(b)) for a, b in zip(m.ravel().tolist(), e.ravel().tolist())]
        acc = list(map(ctx.plus, term)) if acc is None else list(map(ctx.add, acc, term))
    assert acc is not None
    return np.fromiter(acc, dtype=object, count=len(acc)).reshape(shape)


def aligned(args: list[Pairs]) -> list[Pairs]:
    """The same values with as many terms each (zero terms appended), for wiring across them."""
    terms = max(len(a.m) for a in args)
    out = []
    for a in args:
        pad = terms - len(a.m)
        zeros = tuple(np.zeros(a.shape, dtype=np.int64) for _ in range(pad))
        out.append(Pairs(a.m + zeros, a.e + zeros))
    return out


def moved_pairs(node: Node, args: list[Pairs]) -> Pairs:
    """A wiring node applied to values held as integer arrays: the same move on every array (a
    padded element gets m = 0, e = 0, i.e. the value 0)."""
    args = aligned(args)
    terms = range(len(args[0].m))
    return Pairs(
        tuple(move(node, [a.m[i] for a in args], lambda: 0) for i in terms),
        tuple(move(node, [a.e[i] for a in args], lambda: 0) for i in terms),
    )
