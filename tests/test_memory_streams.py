"""Streams (tc0sim.engines.streams, docs/semantics.md §2.5): large row-local values, such as the
official sampler's V × V comparison maps, are never held whole; each exit is computed in blocks of
rows. The bits, errors and gate counts are those of the unstreamed reference engine, and the
estimate of ``peak_bytes`` follows the blocks.
"""

from __future__ import annotations

import numpy as np
import pytest

from tc0sim import engines
from tc0sim.engines import ENGINES, EvalStats, plan
from tc0sim.fp import FpArithmeticError
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder, Graph
from tc0sim.kinds import build
from tc0sim.ops.sampler import index_triangle, inverse_cdf_sample, official_sample

STREAMING_CHUNK = 2
"""A block of 2 elements: values above 128 elements (STREAMED_FROM blocks) are streamed."""


def _sampler(n: int, vocab: int, top_k: int, top_p: float) -> Graph:
    b = Builder()
    logits, exps = b.input("logits", (n, vocab)), b.input("exponentials", (n, vocab))
    onehot, index = official_sample(b, logits, exps, top_k=top_k, top_p=top_p)
    b.output("onehot", onehot)
    b.output("index", index)
    return b.graph


def _inverse_cdf(n: int, vocab: int, top_k: int, top_p: float) -> Graph:
    b = Builder()
    logits, uniform = b.input("logits", (n, vocab)), b.input("uniform", (n,))
    onehot, index = inverse_cdf_sample(b, logits, uniform, top_k, top_p, index_triangle(b, vocab))
    b.output("onehot", onehot)
    b.output("index", index)
    return b.graph


def _sampler_inputs(n: int, vocab: int, seed: int) -> dict[str, np.ndarray]:
    """Logits on a grid of halves (many ties, which the masks and the race break by index) and
    Exp(1) numbers, some equal within a row (ties in the race)."""
    rng = np.random.default_rng(seed)
    logits = rng.integers(-4, 5, size=(n, vocab)) / 2.0
    exps = rng.exponential(size=(n, vocab))
    exps[:, 1] = exps[:, 0]
    return {"logits": logits, "exponentials": exps, "uniform": rng.uniform(size=n)}


def _streamed(graph: Graph, engine: str, p: int, chunk: int | None) -> frozenset[int]:
    flat = graph.flat()
    return ENGINES[engine].memory(p, chunk).streams(flat.live(), set(flat.outputs.values())).streamed


@pytest.mark.parametrize("p", [8, 24, 53])
@pytest.mark.parametrize("engine", ["fast", "mpfr"])
@pytest.mark.parametrize("sampler", [_sampler, _inverse_cdf])
def test_the_streamed_sampler_gives_the_reference_bits(p: int, engine: str, sampler) -> None:
    """top-k, top-p and the race of the official sampler (or the inverse CDF), streamed, against
    the reference engine holding every value (its default pieces stream nothing this small)."""
    n, vocab = 5, 12
    graph = sampler(n, vocab, top_k=7, top_p=0.8)
    streamed = _streamed(graph, engine, p, STREAMING_CHUNK)
    flat = graph.flat()
    comparisons = {node.id for node in flat.live() if node.prim.name == "compare" and node.shape == (n, vocab, vocab)}
    assert comparisons and comparisons <= streamed
    assert not _streamed(graph, "mpfr", p, None)
    for seed in range(3):
        inputs = {k: v for k, v in _sampler_inputs(n, vocab, seed).items() if k in graph.inputs}
        want = engines.evaluate(graph, inputs, plan(graph, p, "mpfr"))
        stats = EvalStats()
        got = engines.evaluate(graph, inputs, plan(graph, p, engine, chunk=STREAMING_CHUNK), stats=stats)
        for name in want:
            assert np.array_equal(got[name], want[name]), (name, seed)
        assert sum(stats.gates.values()) == size(graph).total  # recomputed for a later exit, counted once


def _overflowing_graph() -> Graph:
    """A streamed (n, V, V) product map read by two ⊕ (not fused: two readers), and after it in
    node order an independent product; both overflow at p = 8 for the inputs below."""
    b = Builder()
    w, v = b.input("w", (6, 16)), b.input("v", (6, 16))
    products = b.mul(b.reshape(w, (6, 16, 1)), b.reshape(w, (6, 1, 16)))
    square = b.mul(v, v)
    b.output("rows", b.sum(products, axis=2))
    b.output("columns", b.sum(products, axis=1))
    b.output("square", square)
    return b.graph


def test_an_error_in_a_stream_is_the_unstreamed_error() -> None:
    """Blocks would meet the later node's overflow first; the run is replayed unstreamed and
    raises the error of the node order, as the reference engine does."""
    graph = _overflowing_graph()
    w = np.ones((6, 16))
    w[4, 3] = 2.0**200  # (4, 3, 3) overflows: exponent range [-256, 256) at p = 8
    v = np.ones((6, 16))
    v[0, 0] = 2.0**200
    inputs = {"w": w, "v": v}
    assert _streamed(graph, "fast", 8, STREAMING_CHUNK)
    messages = set()
    for engine, chunk in (("mpfr", None), ("fast", STREAMING_CHUNK), ("mpfr", STREAMING_CHUNK)):
        with pytest.raises(FpArithmeticError) as info:
            engines.evaluate(graph, inputs, plan(graph, 8, engine, chunk=chunk))
        messages.add(str(info.value))
    assert len(messages) == 1 and "(4, 3, 3)" in messages.pop()


def test_released_var_d16_and_flowar_s_fit_8_gb() -> None:
    """The <= 8 GB target (issue 31): VAR-d16 at 256 px (the top-p sampler's 256 × 4096 × 4096
    comparison maps streamed) and FlowAR-S on the fast engine at p = 8 and 53: the estimate plus
    the caller's float64 inputs (8 bytes per element of every input, held while it runs) fit, and
    the estimate holds at least the largest input once rounded."""
    from tc0sim.modelfile import load_model

    for path in ("examples/var_d16.yaml", "examples/flowar_s.yaml"):
        graph = load_model(path).build(None)
        inputs = [8 * graph.node(i).size for i in graph.inputs.values()]
        for p in (8, 53):
            estimate = ENGINES["fast"].memory_bytes(graph, p)
            assert max(inputs) < estimate and estimate + sum(inputs) <= 8 * 10**9, (path, p)


def test_the_estimate_follows_the_streamed_blocks() -> None:
    """Holding the sampler's comparison maps whole would cost 8 bytes per element of each; the
    streamed estimate stays below one of them."""
    n, vocab = 64, 256
    graph = _sampler(n, vocab, top_k=50, top_p=0.9)
    assert _streamed(graph, "fast", 24, 1 << 10)
    assert ENGINES["fast"].memory_bytes(graph, 24, 1 << 10) < 8 * n * vocab * vocab


def test_conv2d_streams_nothing() -> None:
    """A fused product map (conv2d's, with its bias) stays fused: it is never a stream or next to one."""
    graph = build("conv2d", {"h": 8, "w": 8, "c": 4, "k": 4, "hk": 3, "wk": 3})
    flat = graph.flat()
    memory = ENGINES["fast"].memory(24, STREAMING_CHUNK)
    streams = memory.streams(flat.live(), set(flat.outputs.values()))
    assert streams.fused and not (streams.streamed & streams.fused)


def test_the_dask_model_holds_what_the_dask_engine_holds() -> None:
    """mpfr-dask does not fuse a bias chain (products joined to the bias by a concat): its model
    holds the product tensor (an mpfr value and a slot per product), where the reference engine's
    model, which fuses the chain, holds one piece of it; neither streams."""
    graph = build("linear", {"n": 64, "d_in": 64, "d_out": 64})
    flat = graph.flat()
    live, keep = flat.live(), set(flat.outputs.values())
    products = 64 * 64 * 64
    dask = ENGINES["mpfr-dask"].memory(24, None)
    assert not dask.fused(live, keep) and not dask.streams(live, keep).streamed
    assert ENGINES["mpfr-dask"].memory_bytes(graph, 24) >= products * (8 + 100)
    assert ENGINES["mpfr"].memory_bytes(graph, 24) < products * (8 + 100) / 4


def test_every_move_rule_says_whether_it_keeps_rows() -> None:
    """ROW_LOCAL has one entry per move rule of tc0sim.ir.moves (a new move must say)."""
    from tc0sim.engines.streams import ROW_LOCAL
    from tc0sim.ir.moves import ORIGINS

    assert set(ROW_LOCAL) == set(ORIGINS)


def test_a_large_matmul_keeps_its_fused_path() -> None:
    """matmul 256 × 256 · 256 × 512: its 3.4·10^7 products (above the streaming size) read
    broadcasts of held values, so they stay fused with their ⊕ and nothing is streamed."""
    graph = build("matmul", {"n1": 256, "d": 256, "n2": 512})
    flat = graph.flat()
    live, keep = flat.live(), set(flat.outputs.values())
    streams = ENGINES["fast"].memory(24, None).streams(live, keep)
    products = [node.id for node in live if node.prim.name == "mul"]
    assert not streams.streamed and set(products) <= streams.fused
