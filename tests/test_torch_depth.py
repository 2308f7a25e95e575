"""Traced PyTorch versions of the hand-built operators give the hand-built depth vectors where the
order of operations is the same (docs/torch.md lists the differences), and traced ops agree with
the exact-rational oracle (tests/reference.py) at a small precision."""

from __future__ import annotations

from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import reference as R  # noqa: E402
from tc0sim.fp import Format  # noqa: E402
from tc0sim.frontends.torch import trace  # noqa: E402
from tc0sim.interp.depth import depth  # noqa: E402
from tc0sim.ir.graph import Builder  # noqa: E402
from tc0sim.ir.vectors import vec  # noqa: E402
from tc0sim.kinds import build  # noqa: E402
from tc0sim.ops.mha import sdpa  # noqa: E402
from torch_cases import run, wrap  # noqa: E402


def critical(graph):
    return depth(graph).critical


def zeros(*shape):
    return torch.zeros(*shape, dtype=torch.float64)


HAND_BUILT = {
    # traced module, its example inputs, the hand-built kind and dims with the same order of operations
    "matmul": (wrap(torch.mm, 2), [zeros(3, 4), zeros(4, 5)], "matmul", {"n1": 3, "d": 4, "n2": 5}),
    "linear": (torch.nn.Linear(4, 5).double(), [zeros(3, 4)], "linear", {"n": 3, "d_in": 4, "d_out": 5}),
    "mlp": (wrap(lambda x, w, b: x @ w + b, 3), [zeros(3, 4), zeros(4, 5), zeros(5)], "mlp", {"n": 3, "c": 4, "d": 5}),
    "ffn": (wrap(lambda x, w, b: x + (torch.relu(x @ w + b) @ w + b), 3), [zeros(3, 4), zeros(4, 4), zeros(4)],
            "ffn", {"n": 3, "c": 4}),
    "layer_norm": (wrap(lambda x: F.layer_norm(x, (4,), eps=1e-6), 1), [zeros(3, 4)], "layer_norm", {"n": 3, "c": 4}),
    "conv2d": (torch.nn.Conv2d(2, 3, 3, padding=1).double(), [zeros(1, 2, 5, 4)], "conv2d",
               {"h": 5, "w": 4, "c": 2, "k": 3, "hk": 3, "wk": 3}),
    "softmax": (wrap(lambda x: torch.softmax(x, -1), 1), [zeros(3, 4)], "softmax", {"n": 3, "c": 4}),
    "sigmoid": (wrap(torch.sigmoid, 1), [zeros(3, 4)], "sigmoid", {"n": 3, "c": 4}),
    "gelu_tanh": (wrap(lambda x: F.gelu(x, approximate="tanh"), 1), [zeros(3, 4)], "gelu_tanh", {"n": 3, "c": 4}),
    "clamp": (wrap(lambda x: x.clamp(-1, 1), 1), [zeros(3, 4)], "clamp", {"n": 3, "c": 4}),
}


@pytest.mark.parametrize("name", sorted(HAND_BUILT))
def test_traced_operator_has_the_hand_built_depth(name):
    module, inputs, kind, dims = HAND_BUILT[name]
    assert critical(trace(module, tuple(inputs))) == critical(build(kind, dims))


def test_traced_attention_has_the_depth_of_ops_mha_sdpa():
    q, k, v = zeros(1, 2, 5, 4), zeros(1, 2, 6, 4), zeros(1, 2, 6, 3)
    b = Builder()
    b.output("out", sdpa(b, b.input("q", q.shape), b.input("k", k.shape), b.input("v", v.shape), 0.5))
    traced = trace(wrap(F.scaled_dot_product_attention, 3), (q, k, v))
    assert critical(traced) == critical(b.graph) == [vec(d_std=4, d_sum=2, d_exp=1)]


def test_known_differences_from_the_papers_operators():
    """The papers' layer norm has no eps (one add less); SiLU exports as x · sigmoid(x) (one ⊗ more)."""
    ln = trace(wrap(lambda x: F.layer_norm(x, (4,)), 1), (zeros(3, 4),))
    assert critical(ln) == [vec(d_std=6, d_sum=2, d_sqrt=1)] and critical(build("layernorm", {"n": 3, "c": 4})) == [
        vec(d_std=5, d_sum=2, d_sqrt=1)]
    silu = trace(wrap(F.silu, 1), (zeros(3, 4),))
    assert critical(silu) == [vec(d_std=3, d_exp=1)] and critical(build("silu", {"n": 3, "c": 4})) == [vec(d_std=2, d_exp=1)]


P = 8
F8 = Format(P)


def grid(shape, seed, denominator=16):
    """Values of F_8 (small integers over a power of two), so inputs enter unrounded."""
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.integers(-40, 41, size=shape) / denominator, dtype=torch.float64)


def exact_outputs(module, inputs):
    result, _ = run(module, inputs, p=P, values="mpfr")
    return np.vectorize(F8.to_fraction, otypes=[object])(result["out"])


def fr(t):
    return np.vectorize(Fraction, otypes=[object])(t.numpy())


def test_add_and_mm_equal_the_exact_oracle_at_p8():
    a, b = grid((3, 4), 1), grid((4, 5), 2)
    got = exact_outputs(wrap(lambda x, y: x @ y + x.sum(), 2), [a, b])
    A, B = fr(a), fr(b)
    total = R.round_fraction(sum(A.reshape(-1)), P)
    for i in range(3):
        for j in range(5):
            dot = R.round_fraction(sum(R.round_fraction(A[i, k] * B[k, j], P) for k in range(4)), P)
            assert got[i, j] == R.round_fraction(dot + total, P)


def test_softmax_and_rsqrt_equal_the_exact_oracle_at_p8():
    x = grid((2, 5), 3, denominator=8)
    got = exact_outputs(wrap(lambda t: torch.softmax(t, -1) * torch.rsqrt(t * t + 1), 1), [x])
    X = fr(x)
    for i in range(2):
        e = [R.exp_p(v, P) for v in X[i]]
        total = R.round_fraction(sum(e), P)
        for j in range(5):
            soft = R.round_fraction(e[j] / total, P)
            root = R.sqrt_p(R.round_fraction(R.round_fraction(X[i, j] * X[i, j], P) + 1, P), P)
            assert got[i, j] == R.round_fraction(soft * R.round_fraction(1 / root, P), P)


def test_embedding_lookup_equals_the_exact_oracle_at_p8():
    table, tokens = grid((6, 3), 4), torch.tensor([5, 0, 2, 5])
    result, _ = run(torch.nn.Embedding.from_pretrained(table), [tokens], p=P, values="mpfr")
    got = np.vectorize(F8.to_fraction, otypes=[object])(result["out"])
    assert (got == fr(table)[tokens.numpy()]).all()


def test_the_pytest_helpers_take_a_traced_module():
    # matmul is one product layer then one ⊕ (VAR Lemma 5.2): d_std + d_sum; the helpers trace the module
    from tc0sim.testing import assert_depth_at_most, assert_depth_equals

    module, inputs = HAND_BUILT["matmul"][:2]
    assert_depth_equals((module, tuple(inputs)), "d_std + d_sum")
    assert_depth_at_most((module, tuple(inputs), None), "2 d_std + d_sum")
    with pytest.raises(AssertionError, match="depth exceeds the claim"):
        assert_depth_at_most((module, tuple(inputs)), "d_std")
