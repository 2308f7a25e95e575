"""The plain float64 baseline of the real-image benchmarks (benchmarks/float64_dag.py; issue 31
item 7): the same DAG unrounded, driven by the engines' node runner (values released after their
last reader, large row-local values streamed). Its values agree with PyTorch float64 and with the
MPFR engine at p = 53 within a relative 1e-12 (not bit for bit: it rounds nothing to p bits and sums in
numpy's order), streamed or not, and its memory estimate bounds what it allocates."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import float64_dag as F  # noqa: E402

from tc0sim.engines import evaluate, input_bytes, plan  # noqa: E402
from tc0sim.engines.base import random_inputs  # noqa: E402
from tc0sim.ir import primitives as P  # noqa: E402
from tc0sim.ir.graph import Builder, Graph  # noqa: E402
from tc0sim.kinds import build  # noqa: E402
from tc0sim.modelfile import load_model  # noqa: E402
from tc0sim.ops.sampler import official_sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RTOL = 1e-12


def close(got: np.ndarray, want: np.ndarray) -> bool:
    """Within RTOL of the largest reference value (outputs near 0 after cancellation included)."""
    scale = max(float(np.max(np.abs(want))), 1e-300) if want.size else 1.0
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= RTOL * scale))


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def test_every_primitive_with_a_kernel_has_a_numpy_rule() -> None:
    """No gap: each elementwise primitive (and neg) has a ufunc, each reduction a numpy reducer."""
    with_kernel = {row for row in P.BUILTIN if row.kernel is not None}
    assert with_kernel == set(F.KERNELS) | set(F.REDUCERS)


def test_matmul_is_torch_float64() -> None:
    graph = build("matmul", {"n1": 40, "d": 300, "n2": 30})  # 360,000 products: fused in blocks of 2^18
    inputs = random_inputs(graph, seed=1)
    run = F.Float64Run()
    got = F.evaluate_float64(graph, inputs, run=run)["out"]
    assert run.fused  # the products were computed with their ⊕, never held
    assert close(got, (_t(inputs["X"]) @ _t(inputs["Y"])).numpy())


def test_linear_with_its_bias_is_torch_float64() -> None:
    """Products joined to the bias by a concat, summed in blocks of 16 map elements."""
    graph = build("linear", {"n": 12, "d_in": 20, "d_out": 7})
    inputs = random_inputs(graph, seed=2)
    run = F.Float64Run(block=16)
    got = F.evaluate_float64(graph, inputs, run=run)["out"]
    assert any(graph.flat().node(i).prim.move is not None for i in run.fused)  # the bias chain is fused
    want = torch.nn.functional.linear(_t(inputs["X"]), _t(inputs["weight"]), _t(inputs["bias"]))
    assert close(got, want.numpy())


def test_attention_is_torch_float64() -> None:
    """D⁻¹ A X W_V with A = exp(X W_Q W_Kᵀ Xᵀ) (docs/operators.md, attention)."""
    graph = build("attention", {"n": 16, "d": 8})
    inputs = random_inputs(graph, seed=3, scale=0.5)
    x, wq, wk, wv = (_t(inputs[k]) for k in ("X", "W_Q", "W_K", "W_V"))
    a = torch.exp(x @ wq @ (x @ wk).T)
    want = (a @ x @ wv) / a.sum(dim=1, keepdim=True)
    assert close(F.evaluate_float64(graph, inputs, block=32)["out"], want.numpy())


def test_layernorm_is_torch_float64() -> None:
    """(X − μ)/√σ² per row, no ε and no affine map (docs/operators.md, layernorm)."""
    graph = build("layernorm", {"n": 9, "c": 33})
    inputs = random_inputs(graph, seed=4)
    want = torch.nn.functional.layer_norm(_t(inputs["X"]), (33,), eps=0.0)
    assert close(F.evaluate_float64(graph, inputs)["out"], want.numpy())


def _mpfr53(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return evaluate(graph, inputs, plan(graph, 53, "mpfr"), values="float64")


@pytest.mark.parametrize("path", ["var.yaml", "flowar.yaml", "flowar_release.yaml"])
def test_the_examples_agree_with_the_mpfr_engine_at_53(path: str) -> None:
    """The var and flowar examples (n = 4) and a small released FlowAR: every output within 1e-12
    of the MPFR engine at p = 53 (inputs of scale 0.1: float64's exponent range is far smaller than
    F_53's, and an attention logit of a few hundred would overflow exp in float64 alone)."""
    graph = load_model(ROOT / "examples" / path).build(None)
    inputs = random_inputs(graph, seed=5, scale=0.1)
    want = _mpfr53(graph, inputs)
    got = F.evaluate_float64(graph, inputs)
    assert set(got) == set(want)
    for name in want:
        assert close(got[name], want[name]), name


def _sampler(n: int, vocab: int) -> Graph:
    b = Builder()
    logits, exps = b.input("logits", (n, vocab)), b.input("exponentials", (n, vocab))
    onehot, index = official_sample(b, logits, exps, top_k=7, top_p=0.8)
    b.output("onehot", onehot)
    b.output("index", index)
    return b.graph


def _streamed(graph: Graph, block: int) -> frozenset[int]:
    flat = graph.flat()
    return F.Float64Memory(block).streams(flat.live(), set(flat.outputs.values())).streamed


def test_the_streamed_sampler_is_the_unstreamed_one_and_mpfr_53s() -> None:
    """The official sampler's n × V × V comparison maps streamed in blocks of rows (a block of 2
    elements: values above 128 are streamed) give the tokens of the values held whole and of the
    MPFR engine at p = 53."""
    n, vocab = 5, 12
    graph = _sampler(n, vocab)
    compares = {node.id for node in graph.flat().live() if node.prim is P.COMPARE and node.shape == (n, vocab, vocab)}
    assert compares and compares <= _streamed(graph, 2)
    rng = np.random.default_rng(6)
    inputs = {"logits": rng.normal(size=(n, vocab)), "exponentials": rng.exponential(size=(n, vocab))}
    streamed = F.evaluate_float64(graph, inputs, block=2)
    whole = F.evaluate_float64(graph, inputs, block=2, streamed=False)
    want = _mpfr53(graph, inputs)
    for name in want:
        assert np.array_equal(streamed[name], whole[name]) and np.array_equal(streamed[name], want[name]), name


def test_a_streamed_released_var_is_the_unstreamed_one() -> None:
    """examples/var_small.yaml (the official sampler, the VQ-VAE decoder) with blocks of 4
    elements, so that 54 values are streamed: the same outputs within 1e-12 as held whole."""
    graph = load_model(ROOT / "examples" / "var_small.yaml").build(None)
    assert len(_streamed(graph, 4)) > 10
    inputs = random_inputs(graph, seed=0, scale=0.02)
    streamed = F.evaluate_float64(graph, inputs, block=4)
    whole = F.evaluate_float64(graph, inputs, block=4, streamed=False)
    for name in whole:
        assert close(streamed[name], whole[name]), name


@pytest.mark.parametrize("graph", [
    build("matmul", {"n1": 20, "d": 30, "n2": 10}), build("linear", {"n": 12, "d_in": 20, "d_out": 7}),
    build("conv2d", {"h": 6, "w": 6, "c": 3, "k": 4, "hk": 3, "wk": 3}), build("attention", {"n": 16, "d": 8}),
], ids=["matmul", "linear", "conv2d", "attention"])
def test_the_blas_option_is_the_same_contraction(graph: Graph) -> None:
    """``blas``: each ⊕ of fused products by numpy's einsum on the operands' own axes, within
    1e-12 of the products summed in blocks (of 8 elements: every product map fused)."""
    inputs = random_inputs(graph, seed=8, scale=0.5)
    got = F.evaluate_float64(graph, inputs, block=8, blas=True)["out"]
    assert close(got, F.evaluate_float64(graph, inputs, block=8)["out"])


@pytest.mark.parametrize("a_shape, b_shape, axes", [
    ((3, 1, 1), (1, 4, 1), (1, 2)),  # axis 2 in neither operand, reduced: a factor 5
    ((1, 4, 1), (1, 4, 1), (1,)),  # kept axes 0 and 2 in neither operand: broadcast
    ((3, 4, 1), (1, 4, 5), (1,)),  # a matmul's products
])
def test_contract_reads_the_operands_own_axes(a_shape, b_shape, axes) -> None:
    shape = (3, 4, 5)
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=a_shape), rng.normal(size=b_shape)
    got = F.contract(shape, [np.broadcast_to(a, shape), np.broadcast_to(b, shape)], axes)
    assert close(got, np.sum(np.broadcast_to(a, shape) * np.broadcast_to(b, shape), axis=axes))


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_values_are_freed_and_the_estimate_bounds_the_allocations() -> None:
    """On the small released VAR: after the run only the outputs' arrays are alive; at most a
    fraction of the nodes' values were alive at once; numpy's allocations (tracemalloc, inputs
    allocated before) stay within ``estimate_bytes`` and far below those of the same DAG with
    every value held to the end (the old baseline: a dict of every node's value)."""
    graph = load_model(ROOT / "examples" / "var_small.yaml").build(None)
    flat = graph.flat()
    inputs = random_inputs(graph, seed=0, scale=0.02)
    F.evaluate_float64(graph, inputs)  # numba's erf and first-use imports outside the measurement
    run = F.Float64Run()
    peak = _traced_peak(lambda: F.evaluate_float64(graph, inputs, run=run))
    computed = sum(1 for node in flat.live() if node.prim is not P.INPUT)
    assert run.live_arrays <= len(flat.outputs) and run.peak_arrays < computed / 4

    def held_to_the_end() -> None:
        values: list[np.ndarray] = []
        F.evaluate_float64(graph, inputs, run=_Holding(values))

    assert peak <= F.estimate_bytes(graph)
    assert 4 * peak < _traced_peak(held_to_the_end)


@pytest.mark.parametrize("kind, dims", [
    ("matmul", {"n1": 128, "d": 256, "n2": 128}),
    ("conv2d", {"h": 16, "w": 16, "c": 64, "k": 64, "hk": 3, "wk": 3}),
])
def test_the_estimate_bounds_a_fused_block(kind: str, dims: dict[str, int]) -> None:
    """A matmul's and a conv2d's (with its bias) products computed with their ⊕ in 2^18-element
    blocks: numpy's allocations, plus the inputs (allocated before), stay within the estimate,
    and below the product tensor held whole."""
    graph = build(kind, dims)
    inputs = random_inputs(graph, seed=7, scale=0.3)
    F.evaluate_float64(graph, inputs)
    peak = _traced_peak(lambda: F.evaluate_float64(graph, inputs))
    products = max(node.size for node in graph.flat().live() if node.prim is P.MUL)
    assert peak + input_bytes(graph) <= F.estimate_bytes(graph) < 8 * products


def test_the_full_images_fit_10_gb() -> None:
    """The full VAR-d16 image (the sampler's 4096 × 4096 maps streamed) and the full FlowAR-S image:
    the estimate plus the caller's float64 inputs within 10 GB, and the estimate holds at least
    the largest input (the run reads it whole)."""
    for path in ("var_d16.yaml", "flowar_s.yaml"):
        graph = load_model(ROOT / "examples" / path).build(None)
        estimate = F.estimate_bytes(graph)
        largest = max(8 * graph.node(i).size for i in graph.inputs.values())
        assert largest < estimate and estimate + input_bytes(graph) <= 10 * 10**9, path


class _Holding(F.Float64Run):
    """The baseline holding every value until the end (no liveness, no streams)."""

    def __init__(self, values: list[np.ndarray]) -> None:
        super().__init__()
        self.values = values
        self.memory = None  # type: ignore[assignment]  # plans no streams

    def prepare(self, live, keep) -> None:
        self.fused = F.Float64Memory().fused(live, keep)

    def apply(self, node, args):
        value = super().apply(node, args)
        self.values.append(value)
        return value
