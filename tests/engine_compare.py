"""Helpers of the tests that compare the fast engine with the MPFR engine (the oracle): the
outputs, or the error, of one evaluation; p-bit random operands."""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np

from tc0sim import engines
from tc0sim.engines import plan
from tc0sim.fp import FpArithmeticError


def outcome(graph, inputs: dict[str, np.ndarray], p: int, engine: str, chunk: int | None):
    """(outputs as object arrays of mpfr values, or the error as (type, message); the run's stats)."""
    stats = engines.EvalStats()
    try:
        return engines.evaluate(graph, inputs, plan(graph, p, engine, chunk=chunk), stats=stats), stats
    except FpArithmeticError as e:
        return (type(e), str(e)), stats


def same_as_mpfr(graph, inputs: dict[str, np.ndarray], p: int, chunk: int | None) -> engines.EvalStats:
    """The fast engine's values (exact rationals, signs of zeros included) or error are the MPFR
    engine's; the fast run's stats."""
    fast, stats = outcome(graph, inputs, p, "fast", chunk)
    mpfr, _ = outcome(graph, inputs, p, "mpfr", None)
    if isinstance(mpfr, tuple):
        assert fast == mpfr
        return stats
    assert isinstance(fast, dict), fast
    for name in mpfr:
        assert [Fraction(*v.as_integer_ratio()) for v in fast[name].ravel()] == \
               [Fraction(*v.as_integer_ratio()) for v in mpfr[name].ravel()], name
        assert [v.is_signed() for v in fast[name].ravel()] == [v.is_signed() for v in mpfr[name].ravel()], name
    return stats


def p_bit(rng: np.random.Generator, p: int, shape: tuple[int, ...], exponents: tuple[int, int]) -> np.ndarray:
    """Random p-bit values m·2^e (m of exactly p bits, random sign), e uniform in ``exponents``."""
    m = rng.integers(1 << (p - 1), 1 << p, size=shape, dtype=np.int64) * rng.choice([-1, 1], size=shape)
    return np.ldexp(m.astype(np.float64), rng.integers(*exponents, size=shape) - p)


def same_bits_on_one_and_all_threads(graph, inputs: dict[str, np.ndarray], p: int, chunk: int | None) -> None:
    """The fast engine's float64 outputs have the same bits on one numba thread and on all of them,
    and they are the MPFR engine's."""
    results = []
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n)
            results.append(engines.evaluate(graph, inputs, plan(graph, p, "fast", chunk=chunk), values="float64"))
    finally:
        numba.set_num_threads(threads)
    mpfr = engines.evaluate(graph, inputs, plan(graph, p, "mpfr"), values="float64")
    for name, expected in mpfr.items():
        assert all(np.array_equal(r[name].view(np.int64), expected.view(np.int64)) for r in results), name
