"""Both cores (issue 31 item 5, docs/threads.md): the fast engine with its numpy steps and the
double-double kernels on one thread against two, on the scaled models of bench_real_image.py, a
layer norm and an elementwise graph, in one process, the settings alternating, best of ``--repeat``.

Settings (all in this process, nothing else changed):

* ``before``: the numpy steps in the calling thread (TC0SIM_THREADS=1) and tc0sim.ddjit's loops
  serial (PARALLEL_MIN above every size), numba's kernels of p <= 25 (jit_dot, jit_sum) on both
  cores: the engine before this change;
* ``after``: the defaults (both cores wherever a threshold is met);
* ``one``: every step on one thread (TC0SIM_THREADS=1, numba.set_num_threads(1)).

Prints per row wall seconds, CPU seconds (user + system of the process, all threads) and the load
average (1 min) before each setting's best run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402

from bench_real_image import WORKLOADS  # noqa: E402
from tc0sim import ddjit  # noqa: E402
from tc0sim.engines import evaluate, plan  # noqa: E402
from tc0sim.engines.base import random_inputs  # noqa: E402
from tc0sim.engines.fast import pool  # noqa: E402
from tc0sim.ir.graph import Builder  # noqa: E402
from tc0sim.kinds import build  # noqa: E402
from tc0sim.modelfile import loads_model  # noqa: E402

PARALLEL_MIN = ddjit.PARALLEL_MIN


def setting(name: str) -> None:
    """Switch this process to one of the three settings."""
    os.environ[pool.THREADS_ENV] = "2" if name == "after" else "1"
    ddjit.PARALLEL_MIN = PARALLEL_MIN if name == "after" else 1 << 62
    numba.set_num_threads(1 if name == "one" else numba.config.NUMBA_NUM_THREADS)


def elementwise() -> object:
    """exp(x·y + x) / (y² + e^(−x²)) on 2048 × 1024 inputs (maps only, no reduction)."""
    b = Builder()
    x, y = b.input("x", (2048, 1024)), b.input("y", (2048, 1024))
    b.output("z", b.div(b.exp(b.add(b.mul(x, y), x)), b.add(b.mul(y, y), b.exp(b.neg(b.mul(x, x))))))
    return b.graph


def graphs(names: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in names:
        if name in WORKLOADS:
            out[name] = loads_model(WORKLOADS[name][1], name).build()
        elif name == "layernorm":
            out[name] = build("layernorm", {"n": 2048, "c": 512})
        elif name == "elementwise":
            out[name] = elementwise()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="layernorm,elementwise,var_d16,flowar_s")
    parser.add_argument("--precisions", default="8,24,53")
    parser.add_argument("--settings", default="before,after,one")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    names = args.settings.split(",")
    for name, graph in graphs(args.workloads.split(",")).items():
        inputs = random_inputs(graph, seed=0, scale=0.02)
        for p in [int(v) for v in args.precisions.split(",")]:
            chosen = plan(graph, p, "fast", max_memory=8 * 10**9)
            setting("after")
            evaluate(graph, inputs, chosen, values="native")  # numba loaded, kernels compiled, pools filled
            best: dict[str, tuple[float, float, float]] = {}
            for _ in range(args.repeat):
                for s in names:
                    setting(s)
                    load = os.getloadavg()[0]
                    t0, c0 = time.perf_counter(), time.process_time()
                    evaluate(graph, inputs, chosen, values="native")
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    if s not in best or wall < best[s][0]:
                        best[s] = (wall, cpu, load)
            base = best[names[0]][0]
            cells = " | ".join(f"{s} {w:.3f} s (cpu {c:.3f}, load {ld:.1f}, x{base / w:.2f})" for s, (w, c, ld) in best.items())
            print(f"| {name} | {p} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
