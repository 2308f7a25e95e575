"""Minimum token distance (Definition 5.2's δ): screened-and-verified against exact all pairs.

Run: python benchmarks/bench_approx.py [--tokens M] [--d D] [--repeat R] — prints the two times side
by side (best of R, run interleaved), their ratio, and checks that both give the same exact squared
distance; then the screened path alone on 20 000 tokens. Figures: docs/benchmarks.md, section
"Separateness".
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tc0sim.approx.exact import DyadicRows, min_distance


def all_pairs(rows: DyadicRows) -> int:
    """The slow path: every pair's exact squared distance (Python integers)."""
    m = len(rows)
    return min(rows.squared_distance(i, j) for i in range(m) for j in range(i + 1, m))


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=1500)
    parser.add_argument("--d", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = DyadicRows.from_values(rng.standard_normal((args.tokens, args.d)).tolist())
    slow = fast = float("inf")
    for _ in range(args.repeat):
        t_slow, exact = best_of(lambda: all_pairs(rows), 1)
        t_fast, screened = best_of(lambda: min_distance(rows), 1)
        slow, fast = min(slow, t_slow), min(fast, t_fast)
    assert screened.squared == exact, "screened minimum differs from the exact all-pairs minimum"
    print(f"{args.tokens} tokens, d = {args.d}: all pairs exact {slow * 1e3:.1f} ms, screened {fast * 1e3:.1f} ms, "
          f"ratio {slow / fast:.1f}, verified candidates {screened.candidates}")
    big = DyadicRows.from_values(rng.standard_normal((20000, args.d)).tolist())
    t_big, result = best_of(lambda: min_distance(big), 1)
    print(f"20000 tokens, d = {args.d}: screened {t_big:.2f} s ({result.counted_pairs:,} pairs), verified candidates {result.candidates}")


if __name__ == "__main__":
    main()
