"""Overhead of the F_p array path over a bare gmpy2 loop doing the same operations.

Run: ``python benchmarks/bench_fp.py [--n 100000] [--repeat 5]``.  For each operation and
precision it prints the best-of-repeat time of ``Format.map`` / ``Format.reduce`` on object
ndarrays and of a plain list comprehension of gmpy2 operators under an equivalent context (same precision and
exponent range, no traps), run interleaved, and their ratio (array path / bare loop).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import gmpy2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tc0sim.fp import Format  # noqa: E402

ROW = 100


def pair_times(fn_a, fn_b, repeat: int) -> tuple[list[float], list[float]]:
    """Times of ``repeat`` runs of each of two functions, run interleaved so both see the same load."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((fn_a, times[0]), (fn_b, times[1])):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return times


def best_pair(fn_a, fn_b, repeat: int) -> tuple[float, float]:
    """Best-of-repeat times of two functions, run interleaved so both see the same load."""
    times = pair_times(fn_a, fn_b, repeat)
    return min(times[0]), min(times[1])


def bench(p: int, n: int, repeat: int) -> list[tuple[str, int, float, float]]:
    F = Format(p)
    rng = np.random.default_rng(p)
    a = F.asarray(rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n))
    b = F.asarray(rng.uniform(0.5, 2.0, n))
    a2 = a.reshape(-1, ROW)
    xs, ys = a.tolist(), b.tolist()
    rows = a2.tolist()
    bare_ctx = gmpy2.context(precision=p, emin=F.emin, emax=F.emax)
    exp = gmpy2.exp
    fsum = gmpy2.fsum
    results = []
    with bare_ctx:
        cases = [
            ("add", lambda: F.map("add", a, b), lambda: [x + y for x, y in zip(xs, ys)]),
            ("mul", lambda: F.map("mul", a, b), lambda: [x * y for x, y in zip(xs, ys)]),
            ("exp", lambda: F.map("exp", a), lambda: [exp(x) for x in xs]),
            (f"sum (rows of {ROW})", lambda: F.reduce("sum", a2, 1), lambda: [fsum(r) for r in rows]),
        ]
        for name, array_fn, bare_fn in cases:
            assert [F.to_pair(v) for v in np.ravel(array_fn())] == [F.to_pair(v) for v in bare_fn()]
            t_arr, t_bare = best_pair(array_fn, bare_fn, repeat)
            results.append((name, p, t_arr, t_bare))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n = args.n - args.n % ROW
    print(f"n = {n} elements, best of {args.repeat}; ratio = array path / bare gmpy2 loop")
    print(f"{'op':<18} {'p':>4} {'array ms':>10} {'bare ms':>10} {'ratio':>7}")
    for p in (24, 53):
        for name, pp, t_arr, t_bare in bench(p, n, args.repeat):
            print(f"{name:<18} {pp:>4} {t_arr * 1e3:>10.2f} {t_bare * 1e3:>10.2f} {t_arr / t_bare:>7.2f}")


if __name__ == "__main__":
    main()
