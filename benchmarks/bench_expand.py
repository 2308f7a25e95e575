"""Scalar expansion rate (gates/s) and tensor-level depth time on a few graphs.

Run: python benchmarks/bench_expand.py  — prints one line per graph; the numbers go to
docs/benchmarks.md, section "Scalar expansion".
"""

from __future__ import annotations

import gc
import time

from tc0sim.interp.depth import depth
from tc0sim.interp.expand import expand
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder, Graph
from tc0sim.ops.matmul import matmul


def matmul_graph(n: int) -> Graph:
    b = Builder()
    b.output("out", matmul(b, b.input("X", (n, n)), b.input("Y", (n, n))))
    return b.graph


def attention_like_graph(n: int, d: int) -> Graph:
    """exp((X W_Q)(X W_K)ᵀ) X W_V / row sums: the chain of seed 002 Lemma 4.6 (6 matmuls deep)."""
    b = Builder()
    x = b.input("X", (n, d))
    wq, wk, wv = (b.input(w, (d, d), role="weight") for w in ("W_Q", "W_K", "W_V"))
    q, k = matmul(b, x, wq), matmul(b, x, wk)
    a = b.exp(matmul(b, q, b.transpose(k, (1, 0))))
    dinv = b.div(b.constant(1), b.reshape(b.sum(a, axis=1), (n, 1)))
    b.output("out", b.mul(dinv, matmul(b, matmul(b, a, x), wv)))
    return b.graph


def measure(name: str, graph: Graph, repeats: int = 3) -> None:
    gates = size(graph).total
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        g = expand(graph, max_gates=10_000_000)
        best = min(best, time.perf_counter() - start)
        nodes, edges = g.number_of_nodes(), g.number_of_edges()
        del g
    start = time.perf_counter()
    depth(graph)
    depth_ms = (time.perf_counter() - start) * 1e3
    print(
        f"{name:28s} gates {gates:>9,d}  scalar nodes {nodes:>9,d}  edges {edges:>10,d}  "
        f"expand {best:6.3f} s  {gates / best:>10,.0f} gates/s  {(nodes + edges) / best:>10,.0f} nodes+edges/s  "
        f"depth {depth_ms:6.1f} ms"
    )


def main() -> None:
    measure("matmul 64x64x64", matmul_graph(64))
    measure("matmul 128x128x128", matmul_graph(128), repeats=1)
    measure("attention-like n=32 d=32", attention_like_graph(32, 32))
    measure("attention-like n=64 d=64", attention_like_graph(64, 64), repeats=1)


if __name__ == "__main__":
    main()
