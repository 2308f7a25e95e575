"""The fast engine at p <= 53 (issue 31): fast against the MPFR engine and against plain numpy.

Run: ``python benchmarks/bench_fast53.py [--quick] [--repeat 3] [--precisions 53]``. The workloads
of bench_eval.py (matmul 512³ and 256³, attention, layer norm, the var and flowar examples; their
inputs normal(0, 1)·0.3). Per workload and precision, in one process run:

* fast: ``evaluate(engine="fast", values="float64")``, timed alternately with numpy (best of
  ``--repeat``, more for short workloads, as in bench_eval.py); a first run, not counted, loads
  (or compiles) the numba kernels of tc0sim.ddjit;
* numpy: the same DAG node by node in plain float64 ufuncs, no rounding (bench_eval.numpy_float64);
* MPFR: ``evaluate(engine="mpfr")``, one run (on the matmuls a slice of the rows, scaled up); the
  fast engine's outputs are checked bit for bit against it where it ran on the whole graph.

Targets (issue 31): MPFR / fast >= 30 and fast / numpy <= 5 at p = 53. The load average of the
machine is printed before and after the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import best, inputs_for, numpy_float64, repeats, workloads  # noqa: E402
from bench_fp import best_pair  # noqa: E402

from tc0sim.fp import Format  # noqa: E402
from tc0sim.interp.evaluate import EvalStats, evaluate  # noqa: E402
from tc0sim.interp.size import size  # noqa: E402


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def table(quick: bool, repeat: int, precisions: list[int]) -> list[tuple[str, int, float, float]]:
    """Print the table; return (workload, p, MPFR/fast, fast/numpy) per row."""
    rows = []
    print("| workload | gates | p | fast s | numpy s | MPFR s | MPFR/fast | fast/numpy | recomputed | bits |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, graph, mpfr_graph, factor in workloads(quick):
        gates = size(graph).total
        inputs = inputs_for(graph)
        for p in precisions:
            stats = EvalStats()
            fast = lambda: evaluate(graph, p, inputs, engine="fast", values="float64")  # noqa: E731
            t_first, _ = best(fast, 1)
            t_fast, t_numpy = best_pair(fast, lambda: numpy_float64(graph, inputs), repeats(t_first, repeat))
            ours = evaluate(graph, p, inputs, engine="fast", stats=stats)
            target = mpfr_graph or graph
            t_mpfr, theirs = best(lambda: evaluate(target, p, inputs_for(target), engine="mpfr"), 1)
            F = Format(p)
            bits = "same" if mpfr_graph is None and all(F.to_pairs(ours[k]) == F.to_pairs(theirs[k]) for k in ours) else (
                "(slice)" if mpfr_graph is not None else "DIFFER")
            t_mpfr *= factor
            scaled = f" (rows ×{factor:g})" if factor != 1 else ""
            rows.append((label, p, t_mpfr / t_fast, t_fast / t_numpy))
            print(
                f"| {label} | {gates:,} | {p} | {t_fast:.3f} | {t_numpy:.3f} | {t_mpfr:.2f}{scaled} | {t_mpfr / t_fast:.0f} | "
                f"{t_fast / t_numpy:.2f} | {stats.recomputed:,} ({100 * stats.recomputed / max(1, gates):.4f} %) | {bits} |",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--precisions", default="53", help="comma-separated, each in 2..53")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"load average before: {load()}")
    rows = table(args.quick, args.repeat, [int(p) for p in args.precisions.split(",")])
    print(f"load average after: {load()}; total {time.perf_counter() - started:.0f} s")
    for name, ok in (("MPFR/fast >= 30", lambda r: r[2] >= 30), ("fast/numpy <= 5", lambda r: r[3] <= 5)):
        missed = [f"{r[0]} (p = {r[1]})" for r in rows if not ok(r)]
        print(f"target {name}: " + ("met on every row" if not missed else "missed on " + ", ".join(missed)))


if __name__ == "__main__":
    main()
