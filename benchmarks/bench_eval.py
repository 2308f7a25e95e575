"""The evaluate engines side by side: fast (binary64 + certified rounding), MPFR, a bare gmpy2
loop, and plain numpy float64 without rounding; then the MPFR engine at p = 53 / 113 on Dask.

Run: ``python benchmarks/bench_eval.py [--quick] [--repeat 3]``. fast and numpy are timed
alternately (so both see the same machine load), best of ``--repeat`` runs each, or of more for
short workloads (about 1 s of fast runs, at most 25: this machine's speed drifts by tens of percent
from run to run, and a best of 3 runs of 0.06 s did not settle it); MPFR is the best of 3 runs when
one takes under 5 s, else one run; the other columns are one run each, in the same process run.

* fast: ``evaluate(engine="fast", values="float64")`` (float64 outputs; converting them to mpfr
  objects is a separate column, "→mpfr").
* MPFR: ``evaluate(engine="mpfr")``. On the matmuls it is measured on a slice of the rows (the
  same graph with n1 rows instead of 512 / 256: every row costs the same) and scaled up; the
  table says which.
* bare gmpy2: the workload's gate counts (tc0sim.interp.size) times per-gate times of bare gmpy2
  list comprehensions measured here (``x * y``, ``x + y``, ``x / y``, ``gmpy2.exp``,
  ``gmpy2.sqrt``, ``gmpy2.fsum`` per term), under a context of the same precision.
* numpy: the same DAG evaluated node by node with numpy float64 ufuncs and ``np.sum`` over
  broadcast products (no rounding, no BLAS).
Ratios: MPFR / fast (target >= 30) and fast / numpy (target <= 5). "recomputed" is the share of
gates the fast engine sent to MPFR (target < 1 %). Peak memory of the fast matmul 512³ is the
maximum resident set of a child process that runs only that evaluation (target < 1 GB).

Dask (``--parallel-only`` alone, ``--skip-parallel`` without it): the default plan (the MPFR
engine in this process: no cluster is started unless --workers or --scheduler asks) against the
MPFR engine on a warm 2-worker local cluster, timed alternately (best of ``--parallel-repeat``,
default 7; the ratio of the best times and of each pair of runs, min / median / max), and on a
cold one as ``--workers 2`` starts and closes it (one run), with the workers' CPU seconds per
wall second (target: the default never slower than Dask by more than 10 %). On Linux the share
of CPU time the hypervisor stole from this virtual machine during the table and the whole run is
printed.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import gmpy2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tc0sim.fp import Format  # noqa: E402
from tc0sim.interp.evaluate import EvalStats, evaluate, random_inputs  # noqa: E402
from tc0sim.interp.size import size  # noqa: E402
from tc0sim.ir.exact import constant_value  # noqa: E402
from tc0sim.ir.graph import Graph  # noqa: E402
from tc0sim.ir.primitives import CONSTANT, INPUT  # noqa: E402
from tc0sim.ir.wiring import move  # noqa: E402
from tc0sim.kinds import build  # noqa: E402
from tc0sim.modelfile import load_model  # noqa: E402
from bench_fp import best_pair, pair_times  # noqa: E402  (one interleaved best-of timer for the benchmarks)
from float64_dag import KERNELS  # noqa: E402  (each primitive in unrounded binary64)

ROOT = Path(__file__).resolve().parents[1]

def numpy_float64(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The DAG in plain float64: one numpy call per node, no rounding to p bits."""
    values: dict[int, np.ndarray] = {}
    for node in graph.flat().live():
        row = node.prim
        args = [values[i] for i in node.inputs]
        if row is INPUT:
            values[node.id] = np.asarray(inputs[node.name], dtype=np.float64)
        elif row is CONSTANT:
            values[node.id] = np.vectorize(float, otypes=[np.float64])(constant_value(node.attrs["value"]))
        elif row.kernel in ("sum", "prod"):
            values[node.id] = (np.sum if row.kernel == "sum" else np.prod)(args[0], axis=node.attrs["axes"])
        elif row.kernel is not None:
            values[node.id] = KERNELS[row](*args)
        else:
            values[node.id] = move(node, args, lambda: 0.0)
    return {name: values[nid] for name, nid in graph.outputs.items()}


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


_RATES: dict[int, dict[str, float]] = {}


def bare_rates(p: int, n: int = 100_000) -> dict[str, float]:
    """Per-gate seconds of bare gmpy2 loops at precision p, measured once per run."""
    if p not in _RATES:
        _RATES[p] = _measure_bare_rates(p, n)
    return _RATES[p]


def _measure_bare_rates(p: int, n: int) -> dict[str, float]:
    """Seconds per gate of bare gmpy2 loops at precision p (fsum: per term, rows of 64)."""
    F = Format(p)
    rng = np.random.default_rng(p)
    xs = F.asarray(rng.uniform(0.5, 2.0, n)).tolist()
    ys = F.asarray(rng.uniform(0.5, 2.0, n)).tolist()
    rows = [xs[i:i + 64] for i in range(0, n, 64)]
    exp, sqrt, fsum = gmpy2.exp, gmpy2.sqrt, gmpy2.fsum
    loops = {
        "mul": lambda: [x * y for x, y in zip(xs, ys)],
        "add": lambda: [x + y for x, y in zip(xs, ys)],
        "div": lambda: [x / y for x, y in zip(xs, ys)],
        "exp": lambda: [exp(x) for x in xs],
        "sqrt": lambda: [sqrt(x) for x in xs],
        "sum": lambda: [fsum(r) for r in rows],
    }
    with gmpy2.context(precision=p, emin=F.emin, emax=F.emax):
        return {name: best(loop, 3)[0] / n for name, loop in loops.items()}


def bare_seconds(graph: Graph, rates: dict[str, float]) -> float:
    """The workload's gates at bare gmpy2 rates (a ⊕ of fan-in k costs k terms)."""
    total = 0.0
    for node in graph.flat().live():
        row = node.prim
        if row.is_wiring:
            continue
        if row.kernel in ("sum", "prod"):
            total += math.prod(graph.node(node.inputs[0]).shape) * rates["sum"]
        else:
            total += node.size * rates.get(row.kernel, rates["add"])
    return total


def workloads(quick: bool) -> list[tuple[str, Graph, Graph | None, float]]:
    """(label, graph, graph the MPFR engine is timed on, factor to scale that time by)."""
    var, flowar = load_model(ROOT / "examples/var.yaml"), load_model(ROOT / "examples/flowar.yaml")
    big = 128 if quick else 512
    mid = 64 if quick else 256
    rows_big, rows_mid = 8, 32
    return [
        (f"matmul {big}³", build("matmul", {"n1": big, "d": big, "n2": big}),
         build("matmul", {"n1": rows_big, "d": big, "n2": big}), big / rows_big),
        (f"matmul {mid}³", build("matmul", {"n1": mid, "d": mid, "n2": mid}),
         build("matmul", {"n1": rows_mid, "d": mid, "n2": mid}), mid / rows_mid),
        ("attention n=256 d=64" if not quick else "attention n=64 d=32",
         build("attention", {"n": 256, "d": 64} if not quick else {"n": 64, "d": 32}), None, 1.0),
        ("layernorm 2048×512" if not quick else "layernorm 256×128",
         build("layernorm", {"n": 2048, "c": 512} if not quick else {"n": 256, "c": 128}), None, 1.0),
        ("var example, n=8" if quick else "var example, n=24", var.build(8 if quick else 24), None, 1.0),
        ("flowar example, n=8" if quick else "flowar example, n=24", flowar.build(8 if quick else 24), None, 1.0),
    ]


def inputs_for(graph: Graph) -> dict[str, np.ndarray]:
    """normal(0, 1)·0.3 inputs (small enough that exp stays in range at p = 8)."""
    return random_inputs(graph, seed=0, scale=0.3)


def repeats(seconds: float, repeat: int) -> int:
    """At least ``repeat`` runs; more for a short workload (about 1 s of runs, at most 25)."""
    return max(repeat, min(25, math.ceil(1.0 / max(seconds, 1e-3))))


def main_table(args: argparse.Namespace) -> None:
    print("| workload | gates | p | fast s | →mpfr s | MPFR s | bare gmpy2 s | numpy s | MPFR/fast | fast/numpy | recomputed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, graph, mpfr_graph, factor in workloads(args.quick):
        gates = size(graph).total
        inputs = inputs_for(graph)
        for p in (8, 11, 24):
            stats = EvalStats()
            fast = lambda: evaluate(graph, p, inputs, engine="fast", values="float64")  # noqa: E731
            t_first, _ = best(fast, 1)
            t_fast, t_numpy = best_pair(fast, lambda: numpy_float64(graph, inputs), repeats(t_first, args.repeat))
            t_objects, _ = best(lambda: evaluate(graph, p, inputs, engine="fast", stats=stats), 1)
            target = mpfr_graph or graph
            mpfr = lambda: evaluate(target, p, inputs_for(target), engine="mpfr")  # noqa: E731
            t_mpfr, _ = best(mpfr, 1)
            if t_mpfr < 5.0:
                t_mpfr = min(t_mpfr, best(mpfr, 2)[0])
            t_mpfr *= factor
            t_bare = bare_seconds(graph, bare_rates(p))
            share = stats.recomputed / max(1, gates)
            scaled = f" (rows ×{factor:g})" if factor != 1 else ""
            print(
                f"| {label} | {gates:,} | {p} | {t_fast:.3f} | {t_objects:.3f} | {t_mpfr:.2f}{scaled} | {t_bare:.2f} | "
                f"{t_numpy:.3f} | {t_mpfr / t_fast:.0f} | {t_fast / t_numpy:.2f} | {stats.recomputed:,} ({100 * share:.4f} %) |",
                flush=True,
            )


def peak_memory_child(n: int) -> None:
    """Print this process's peak resident set (VmHWM, kB) after the fast engine's matmul n³.
    (getrusage's ru_maxrss would include the parent's peak: Linux keeps it across exec.)"""
    graph = build("matmul", {"n1": n, "d": n, "n2": n})
    evaluate(graph, 24, inputs_for(graph), engine="fast", values="float64")
    status = Path("/proc/self/status").read_text()
    print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def peak_memory(n: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--peak-memory-child", str(n)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def _spin(_: int) -> int:
    total = 0
    for i in range(5_000_000):
        total += i
    return total


def available_cores() -> float:
    """2·t(one loop) / t(two loops in two processes): 2.0 on two idle cores, ~1 on a busy machine."""
    import multiprocessing

    t0 = time.perf_counter()
    _spin(0)
    one = time.perf_counter() - t0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [0, 0])
        t0 = time.perf_counter()
        pool.map(_spin, [0, 1])
        two = time.perf_counter() - t0
    return 2 * one / two


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, total) CPU ticks of this machine so far, from Linux's /proc/stat (None elsewhere):
    stolen is time the hypervisor ran something else on this virtual machine's cores."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_since(start: tuple[int, int] | None) -> str:
    now = cpu_ticks()
    if start is None or now is None or now[1] == start[1]:
        return "not measured"
    return f"{100 * (now[0] - start[0]) / (now[1] - start[1]):.0f} % of CPU time"


def worker_cpu(client: Any) -> float:
    """CPU seconds used so far by all the cluster's worker processes."""
    return sum(client.run(time.process_time).values())


def parallel_table(args: argparse.Namespace) -> None:
    """The default plan (``tc0sim.engines.plan`` with no option: the engine it picks, in this
    process: the fast engine up to p = 53, the MPFR engine above), the MPFR engine in this process
    (one run; the default itself above p = 53) and the MPFR engine on Dask with 2 workers, in the
    same run: a warm 2-worker cluster, timed
    alternately with the default (best of ``--parallel-repeat``), and a cold one as ``eval
    --workers 2`` starts and closes it (one run). The default must never be slower than either by
    more than 10 % (issue 31); the bits are asserted equal."""
    from distributed import Client

    from tc0sim import engines
    from tc0sim.engines.dask import local_cluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    n = 64 if args.quick else 256
    cases = [(f"matmul {n}³", build("matmul", {"n1": n, "d": n, "n2": n})),
             (f"attention n={n} d=64", build("attention", {"n": n, "d": 64}))]
    print(f"\ncores available to this run (two CPU-bound processes vs one): {available_cores():.2f}")
    cluster = local_cluster(2)
    client = Client(cluster)
    evaluate(build("matmul", {"n1": 8, "d": 8, "n2": 8}), 53, engine="mpfr", scheduler=cluster.scheduler_address)
    ticks = cpu_ticks()
    print("| workload | gates | p | default plan | default s | MPFR in this process s | Dask 2 workers warm s "
          "| default / warm | per pair of runs (min / median / max) | Dask 2 workers cold s (start, close) "
          "| default / cold | MPFR in this process / warm | worker CPU s per wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    try:
        for label, graph in cases:
            inputs = inputs_for(graph)
            for p in (53, 113):
                chosen = engines.plan(graph, p)
                last: dict[str, dict[str, Any]] = {}
                cpu: list[float] = []

                def default() -> None:
                    last["default"] = engines.evaluate(graph, inputs, chosen)

                def warm() -> None:
                    before = worker_cpu(client)
                    last["warm"] = evaluate(graph, p, inputs, engine="mpfr", scheduler=cluster.scheduler_address)
                    cpu.append(worker_cpu(client) - before)

                walls = pair_times(default, warm, args.parallel_repeat)
                t_cold, last["cold"] = best(lambda: evaluate(graph, p, inputs, engine="mpfr", workers=2), 1)
                if chosen.engine == "mpfr" and not chosen.workers and not chosen.scheduler:
                    t_mpfr, last["mpfr"] = min(walls[0]), last["default"]
                else:
                    t_mpfr, last["mpfr"] = best(lambda: evaluate(graph, p, inputs, engine="mpfr"), 1)
                F = Format(p)
                for name in ("warm", "cold", "mpfr"):
                    assert all(F.to_pairs(last[name][k]) == F.to_pairs(last["default"][k]) for k in last["default"]), \
                        f"Dask ({name}) changed the bits"
                mine, theirs = min(walls[0]), min(walls[1])
                pairs = sorted(a / b for a, b in zip(walls[0], walls[1]))
                where = f"{chosen.engine}, " + ("in this process" if not chosen.workers and not chosen.scheduler else
                                                f"{chosen.workers} workers")
                busy = max(c / t for c, t in zip(cpu, walls[1]))
                print(f"| {label} | {size(graph).total:,} | {p} | {where} | {mine:.2f} | {t_mpfr:.2f} | {theirs:.2f} "
                      f"| {mine / theirs:.2f} | {pairs[0]:.2f} / {statistics.median(pairs):.2f} / {pairs[-1]:.2f} "
                      f"| {t_cold:.2f} | {mine / t_cold:.2f} | {t_mpfr / theirs:.2f} | {busy:.2f} |", flush=True)
        print(f"hypervisor steal during the table: {steal_since(ticks)}")
    finally:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # closing clusters logs at INFO
        client.close()
        cluster.close()
    print(f"cores available after the table: {available_cores():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-parallel", action="store_true")
    parser.add_argument("--parallel-only", action="store_true", help="only the Dask table")
    parser.add_argument("--parallel-repeat", type=int, default=7)
    parser.add_argument("--peak-memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory_child is not None:
        peak_memory_child(args.peak_memory_child)
        return
    started = time.perf_counter()
    ticks = cpu_ticks()
    if not args.parallel_only:
        main_table(args)
        n = 128 if args.quick else 512
        print(f"\npeak resident memory of the fast engine on matmul {n}³ (child process): {peak_memory(n):.0f} MB")
    if not args.skip_parallel:
        parallel_table(args)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s; hypervisor steal: {steal_since(ticks)}")


if __name__ == "__main__":
    main()

