"""Find and certify the guard bits of the exp threshold circuit, by exhaustive simulation.

    python benchmarks/exp_guard_bits.py P [P ...] [--start G] [--stop G]

For each p, builds the exp circuit with g = start, start + 1, ... guard bits and simulates it on
every input whose exponent lies in [−(W + p) − 2, 2] (W = p + g; both signs, every significand,
and zero) against tc0sim.fp (MPFR's correctly rounded exp); prints the mismatches per g and stops
at the first g with none.  Inputs outside that window are settled by the argument in
docs/threshold.md (e^x rounds to 1 below it; e ≥ 1 always leaves the range), not by simulation.
The results are the table ``EXP_GUARD_BITS`` of tc0sim/threshold/fp_exp.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tc0sim.fp import Format, FpArithmeticError  # noqa: E402
from tc0sim.threshold import fp_circuits as F  # noqa: E402


def window(p: int, g: int) -> list[tuple[int, int]]:
    """Every input with exponent in [−(W + p) − 2, 2] (inside the F_p range), and zero."""
    hi = 1 << p
    lo = max(-hi, -(p + g + p) - 2)
    return [(sign * m, e) for e in range(lo, min(hi, 3)) for m in range(hi // 2, hi) for sign in (1, -1)] + [(0, 0)]


def mismatches(p: int, g: int, cases: list[tuple[int, int]]) -> tuple[int, F.Circuit]:
    fmt = Format(p)
    circuit = F.exp(p, guard=g)
    out = circuit.simulate(np.array([F.encode(m, e, p) for m, e in cases], dtype=np.uint8)).astype(int)
    bad = 0
    for (m, e), row in zip(cases, out):
        try:
            want = fmt.to_pair(fmt.exp(fmt.from_pair(m, e)))
        except FpArithmeticError:
            want = None
        bad += not (row[-1] == 1 if want is None else row[-1] == 0 and F.decode(row[:-1], p) == want)
    return bad, circuit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("precisions", type=int, nargs="+")
    parser.add_argument("--start", type=int, default=1, help="first g tried (default 1)")
    parser.add_argument("--stop", type=int, default=None, help="last g tried (default: until one passes)")
    args = parser.parse_args()
    for p in args.precisions:
        for g in range(args.start, (args.stop if args.stop is not None else 3 * p + 7) + 1):
            start = time.perf_counter()
            cases = window(p, g)
            bad, circuit = mismatches(p, g, cases)
            st = circuit.stats()
            print(f"p={p} g={g}: {bad} mismatches in {len(cases)} inputs; depth {st.depth}, {st.gates} gates, "
                  f"{st.wires} wires ({time.perf_counter() - start:.0f} s)", flush=True)
            if not bad:
                break


if __name__ == "__main__":
    main()
