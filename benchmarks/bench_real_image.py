"""Real-image workloads (issue 31 item 7): the released VAR-d16 and FlowAR-S architectures at
p = 8, 11, 24, 53 on the fast engine, beside plain numpy float64 doing the same DAG unrounded.

A full image (examples/var_d16.yaml: 5.4·10^11 gates; examples/flowar_s.yaml: 8.3·10^11) takes
minutes to hours, so each row runs a scaled-down model of the same architecture (same widths,
depth and decoder, fewer scales: fewer tokens and a smaller image), reports its gates/s, and
projects the full image's time as its gates over that rate (an estimate: a full image has a larger
share of big products, which run faster than the rest), and again part by part (each part's time,
e.g. the sampler's or the decoder's, scaled by its gates in the full image over the scaled
model's, the weights' rounding on entry counted once: ``projected_by_part``). The fast run's user and system CPU
seconds are given (both cores' work counts in user). ``--full`` runs the full image instead.

* fast: ``evaluate(plan(graph, p, "fast"), values="native")`` in this process (``tc0sim eval``'s
  own call), random weights normal(0, 1)·0.02 (seed 0);
* numpy: the same DAG in plain float64 without rounding (benchmarks/float64_dag.py: the engines'
  node runner, so values are released after their last reader and the sampler's V × V maps are
  streamed; a map read only by a ⊕ computed with it in blocks of 2^18 elements; numpy's multiply
  and ``np.sum``, the C library's erf, one thread, no BLAS).

The two are run alternately, best of ``--repeat`` each; ``os.getloadavg()`` is printed before and
after each row (the build machine is shared). A run takes 20 s to 2 min per row and precision.
``--numpy-only`` runs only the float64 baseline (``--full``: on the full image's model file, same
random weights), printing its memory estimate first (``--dry-run``: only that), then gates, wall and
CPU seconds, gates/s and the process's peak resident set (one workload per process for a
row's own peak); ``--blas`` adds a labelled variant whose ⊕ of products is numpy's einsum (BLAS).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_fp import pair_times  # noqa: E402
from float64_dag import Float64Run, estimate_bytes, evaluate_float64  # noqa: E402

from tc0sim.engines import EvalStats, evaluate, input_bytes, plan  # noqa: E402
from tc0sim.engines.base import random_inputs  # noqa: E402
from tc0sim.ir.graph import Graph, Node  # noqa: E402
from tc0sim.ir.primitives import INPUT  # noqa: E402
from tc0sim.interp.size import size  # noqa: E402
from tc0sim.modelfile import load_model, loads_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = {
    "var_d16": ("VAR-d16 (width 1024, 16 blocks, decoder ch 160), scales 1, 2: 32 px",
                "kind: var_release\ndepth: 16\nscales: [1, 2]\ncfg: 1.5\ntop_k: 900\ntop_p: 0.96\n",
                ROOT / "examples" / "var_d16.yaml"),
    "flowar_s": ("FlowAR-S (AR 768 wide, flow head 1024 x 2, 25 steps, KL-16 decoder), scales 1, 2, 4: 64 px",
                 "kind: flowar_release\nvariant: S\nscales: [1, 2, 4]\n",
                 ROOT / "examples" / "flowar_s.yaml"),
}
"""Scaled-down models of the released architectures, and the full image's model file."""

def part_of(node: Node) -> str:
    """The model part a node belongs to: its outermost scope below the model's, scales merged
    (``adaln_block``, ``sample``, ``vae_decoder``, ...)."""
    names = [s.name for s in node.scope][1:]
    names = [n for n in names if not re.fullmatch(r"scale\d+", n)]
    return names[0] if names else "(top)"


def gates_by_part(graph: Graph) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for node in graph.flat().live():
        if not node.prim.is_wiring:
            counts[part_of(node)] += node.size
    return counts


def entry_seconds(graph: Graph, inputs: dict[str, np.ndarray], p: int) -> dict[str, float]:
    """Seconds of rounding each input on entry, on a fast run of their own."""
    from tc0sim.engines.fast.engine import variant
    from tc0sim.fp import Format

    found = variant(p)
    assert found is not None
    run = found.run(Format(p), EvalStats())
    seconds: dict[str, float] = {}
    for name, nid in graph.inputs.items():
        start = time.perf_counter()
        run.entry(graph.node(nid), inputs[name])
        seconds[name] = time.perf_counter() - start
    return seconds


class PartClock:
    """Seconds per model part of one evaluation, from the progress hook's calls (one per
    computing node, in node order); the time of the inputs before a node (their rounding on
    entry, ``entries``) is taken out of it and counted as ``(inputs)``."""

    def __init__(self, graph: Graph, entries: dict[str, float]) -> None:
        self.live, self.entries = graph.flat().live(), entries
        self.stamps: list[float] = []

    def start(self) -> None:
        self.stamps = [time.perf_counter()]

    def __call__(self, gates: int) -> None:
        self.stamps.append(time.perf_counter())

    def seconds(self) -> dict[str, float]:
        out: dict[str, float] = collections.defaultdict(float)
        pending, i = 0.0, 0
        for node in self.live:
            if node.prim is INPUT:
                pending += self.entries[node.name]
            elif not node.prim.is_wiring:
                dt = self.stamps[i + 1] - self.stamps[i]
                i += 1
                out["(inputs)"] += min(dt, pending)
                out[part_of(node)] += max(0.0, dt - pending)
                pending = 0.0
        assert i == len(self.stamps) - 1, "one progress call per computing node"
        return out


def projected_by_part(seconds: dict[str, float], scaled: collections.Counter[str], full: collections.Counter[str],
                      rate: float) -> float:
    """The full image's seconds: each part's time scaled by its gates in the full image over the
    scaled model's (the sampler's V × V work grows with the tokens, the blocks' and the decoder's
    products with tokens and pixels, at the scaled model's per-gate rate: an upper estimate, larger
    products run faster); the inputs' rounding (the same weights) once; parts only in the full
    image at the whole run's rate."""
    total = sum(t * (full[part] / scaled[part] if scaled[part] else 1.0) for part, t in seconds.items())
    return total + sum(n for part, n in full.items() if not scaled[part]) / rate


def row(name: str, p: int, repeat: int, full: bool) -> None:
    label, text, full_file = WORKLOADS[name]
    spec = load_model(full_file) if full else loads_model(text, name)
    graph = spec.build()
    inputs = random_inputs(graph, seed=0, scale=0.02)
    chosen = plan(graph, p, "fast", max_memory=8 * 10**9)
    full_graph = load_model(full_file).build()
    gates, full_gates = size(graph).total, size(full_graph).total
    load_before = os.getloadavg()
    last: list[EvalStats] = []
    usage: list[tuple[float, float]] = []
    clocks: list[dict[str, float]] = []
    clock = PartClock(graph, entry_seconds(graph, inputs, p))

    def fast() -> None:
        last[:] = [EvalStats()]
        before = resource.getrusage(resource.RUSAGE_SELF)
        clock.start()
        evaluate(graph, inputs, chosen, stats=last[0], values="native", progress=clock)
        clocks.append(clock.seconds())
        after = resource.getrusage(resource.RUSAGE_SELF)
        usage.append((after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))

    fast_times, numpy_times = pair_times(fast, lambda: evaluate_float64(graph, inputs), repeat)
    t_fast, t_numpy = min(fast_times), min(numpy_times)
    print(f"{name} p={p}: fast {fast_times}, numpy {numpy_times}", file=sys.stderr, flush=True)
    rate = gates / t_fast
    best = fast_times.index(t_fast)
    by_part = projected_by_part(clocks[best], gates_by_part(graph), gates_by_part(full_graph), rate)
    print(f"{name} p={p}: seconds by part {dict(clocks[best])}", file=sys.stderr, flush=True)
    user, system = usage[best]
    print(f"| {label if not full else name + ' (full image)'} | {gates:,} | {p} | {t_fast:.1f} | {rate:.3g} | "
          f"{user:.1f} / {system:.1f} | {t_numpy:.1f} | {t_fast / t_numpy:.2f} | {full_gates / rate / 60:.1f} min | "
          f"{by_part / 60:.1f} min | "
          f"{last[0].recomputed:,} | {' / '.join(f'{v:.1f}' for v in load_before)} → "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())} |", flush=True)


NUMPY_HEADER = ("| workload | gates | numpy s | gates/s | user / sys s | peak RSS GiB | estimate GiB (run + inputs) | "
                "arrays alive at most | non-finite outputs | load 1/5/15 min before → after |")


class Tenths:
    """A progress hook printing the wall seconds at each further tenth of the gates (to stderr)."""

    def __init__(self, name: str, gates: int, start: float) -> None:
        self.name, self.gates, self.start, self.done, self.next = name, gates, start, 0, 1

    def __call__(self, gates: int) -> None:
        self.done += gates
        while self.next <= 9 and self.done * 10 >= self.next * self.gates:
            print(f"{self.name}: {10 * self.next} % of the gates in {time.perf_counter() - self.start:.0f} s",
                  file=sys.stderr, flush=True)
            self.next += 1


def numpy_row(name: str, full: bool, dry_run: bool, blas: bool = False) -> None:
    """The float64 baseline alone (benchmarks/float64_dag.py) on one workload, random weights
    normal(0, 1)·0.02 (seed 0, as the fast rows); its memory estimate first: the run's values
    (``estimate_bytes``) and the caller's float64 inputs (``input_bytes``). The peak resident set
    (``ru_maxrss``) is the process's: the graph, the inputs and the run. ``blas``: each ⊕ of
    products by numpy's einsum (the installed BLAS, its own threads; not the DAG's arithmetic)."""
    label, text, full_file = WORKLOADS[name]
    graph = (load_model(full_file) if full else loads_model(text, name)).build()
    gates, estimate, held = size(graph).total, estimate_bytes(graph), input_bytes(graph)
    print(f"{name}: {gates:,} gates; estimate {estimate:,} bytes of values + {held:,} bytes of inputs "
          f"= {(estimate + held) / 2**30:.2f} GiB", file=sys.stderr, flush=True)
    if dry_run:
        return
    inputs = random_inputs(graph, seed=0, scale=0.02)
    load_before = os.getloadavg()
    run = Float64Run(blas=blas)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    outputs = evaluate_float64(graph, inputs, run=run, progress=Tenths(name, gates, start))
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    rss = after.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # kB on Linux, bytes on macOS
    bad = sum(int(np.size(v) - np.isfinite(v).sum()) for v in outputs.values())
    label = (label if not full else name + " (full image)") + (" [BLAS einsum]" if blas else "")
    print(f"| {label} | {gates:,} | {seconds:.1f} | {gates / seconds:.3g} | "
          f"{after.ru_utime - before.ru_utime:.1f} / {after.ru_stime - before.ru_stime:.1f} | {rss / 2**30:.2f} | "
          f"{(estimate + held) / 2**30:.2f} | {run.peak_arrays:,} | {bad:,} | "
          f"{' / '.join(f'{v:.1f}' for v in load_before)} → {' / '.join(f'{v:.1f}' for v in os.getloadavg())} |",
          flush=True)


KERNEL_WORKLOADS = {
    "matmul 512³": ("matmul", {"n1": 512, "d": 512, "n2": 512}),
    "conv2d 64×64×128→128, 3×3": ("conv2d", {"h": 64, "w": 64, "c": 128, "k": 128, "hk": 3, "wk": 3}),
    "linear 1360×1024→4096": ("linear", {"n": 1360, "d_in": 1024, "d_out": 4096}),
}
"""Single layers for the fused kernel against the numpy path (linear: VAR-d16's last scale, with cfg)."""


def kernel_rows(precisions: list[int], repeat: int) -> None:
    """The fused kernel (two threads, one thread) against the engine's numpy path on single layers:
    the same evaluation with the kernel switched off (``reduce.DOT_MIN_TERMS`` above every fan-in)."""
    import numba

    from tc0sim.engines.fast import reduce
    from tc0sim.kinds import build

    print("| layer | gates | p | kernel, 2 threads s | kernel, 1 thread s | numpy path s | gates/s (2 threads) | speed-up | load before → after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, (kind, dims) in KERNEL_WORKLOADS.items():
        graph = build(kind, dims)
        inputs = random_inputs(graph, seed=0, scale=0.3)
        gates = size(graph).total
        for p in precisions:
            chosen = plan(graph, p, "fast")
            load_before = os.getloadavg()
            on = reduce.DOT_MIN_TERMS

            def run(threads: int, kernel: bool) -> None:
                numba.set_num_threads(threads)
                reduce.DOT_MIN_TERMS = on if kernel else 1 << 62
                try:
                    evaluate(graph, inputs, chosen, values="native")
                finally:
                    reduce.DOT_MIN_TERMS = on
                    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

            run(2, True)  # compiled or loaded once
            times: list[list[float]] = [[], [], []]
            for _ in range(repeat):  # the three side by side, alternately
                for out, (threads, kernel) in zip(times, ((2, True), (1, True), (2, False))):
                    t = time.perf_counter()
                    run(threads, kernel)
                    out.append(time.perf_counter() - t)
            t2, t1, t0 = (min(t) for t in times)
            print(f"| {label} | {gates:,} | {p} | {t2:.3f} | {t1:.3f} | {t0:.3f} | {gates / t2:.3g} | {t0 / t2:.1f}× | "
                  f"{' / '.join(f'{v:.1f}' for v in load_before)} → {' / '.join(f'{v:.1f}' for v in os.getloadavg())} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernels", action="store_true", help="single layers: the fused kernel against the numpy path")
    parser.add_argument("--workloads", default="var_d16,flowar_s")
    parser.add_argument("--precisions", default="8,11,24,53")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="the full images (minutes to hours each)")
    parser.add_argument("--numpy-only", action="store_true",
                        help="only the plain float64 baseline (one run per workload)")
    parser.add_argument("--blas", action="store_true",
                        help="with --numpy-only: each sum of products by numpy's einsum (BLAS, its threads)")
    parser.add_argument("--dry-run", action="store_true", help="with --numpy-only: only the memory estimate")
    args = parser.parse_args()
    if args.numpy_only:
        print(NUMPY_HEADER)
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in args.workloads.split(","):
            numpy_row(name, args.full, args.dry_run, args.blas)
        return
    if args.kernels:
        kernel_rows([int(v) for v in args.precisions.split(",") if int(v) <= 25], max(args.repeat, 3))
        return
    print("| workload | gates | p | fast s | fast gates/s | fast user / sys s | numpy s | fast/numpy | full image (projected) | "
          "full image (by part) | recomputed | load 1/5/15 min before → after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.workloads.split(","):
        for p in (int(v) for v in args.precisions.split(",")):
            row(name, p, args.repeat, args.full)


if __name__ == "__main__":
    main()
