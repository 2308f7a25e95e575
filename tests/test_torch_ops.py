"""Every lowered ATen op of the torch front end against PyTorch float64 at p = 53.

Ops whose F_p meaning is one rounding of an IEEE correctly rounded operation (or exact: wiring,
comparisons, max/min, selection) must agree bit for bit; composite ops within a few ulps of the
output's magnitude (their F_p and IEEE orders of rounding differ). The oracle is torch itself.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from torch_cases import outputs, reference, run, wrap  # noqa: E402

G = torch.Generator().manual_seed(0)


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=G, dtype=torch.float64)


def positive(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=G, dtype=torch.float64) + 0.5


X, Y = randn(2, 3, 4), randn(2, 3, 4)
INTS = torch.randint(-1, 2, (3, 4), generator=G).double()
ROW = randn(4)
IMG = randn(1, 4, 6, 6)
MASK = torch.rand(5, 6, generator=G) > 0.3

EXACT = {
    "add": (lambda a, b: a + b, [X, Y]),
    "add_alpha": (lambda a, b: torch.add(a, b, alpha=2.0), [X, Y]),
    "add_scalar": (lambda a: a + 0.75, [X]),
    "add_broadcast": (lambda a, b: a + b, [X, ROW]),
    "sub": (lambda a, b: a - b, [X, Y]),
    "rsub": (lambda a: 1.5 - a, [X]),
    "mul": (lambda a, b: a * b, [X, Y]),
    "mul_scalar": (lambda a: a * 3.0, [X]),
    "div": (lambda a, b: a / b, [X, positive(2, 3, 4)]),
    "neg": (lambda a: -a, [X]),
    "abs": (torch.abs, [X]),
    "maximum": (torch.maximum, [X, Y]),
    "minimum": (torch.minimum, [X, Y]),
    "clamp": (lambda a: a.clamp(-0.5, 0.25), [X]),
    "clamp_min": (lambda a: a.clamp(min=0.1), [X]),
    "relu": (torch.relu, [X]),
    "hardtanh_relu6": (lambda a: F.hardtanh(a, -0.5, 0.75) + F.relu6(a * 8), [X]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.125), [X]),
    "sign": (torch.sign, [INTS]),
    "max_pool": (lambda a: torch.cat([F.max_pool2d(a, 2).flatten(), F.max_pool2d(a, 3, stride=2, padding=1).flatten()]), [IMG]),
    "compare_infinity": (lambda a: (a < float("inf")).double() + 2 * (a == float("-inf")).double(), [X]),
    "where": (lambda a, b: torch.where(a > b, a, b * 2), [X, Y]),
    "lt": (lambda a, b: (a < b).double(), [X, Y]),
    "gt": (lambda a, b: (a > 0.1).double() + (b > a).double(), [X, Y]),
    "le_ge": (lambda a, b: (a <= b).double() + 2 * (a >= 0).double(), [X, Y]),
    "eq_ne": (lambda a, b: (a == b).double() + 2 * (b != 1).double() + 4 * (a == 0).double(), [INTS, INTS.flip(0)]),
    "logical": (lambda a, b: ((a > 0) & (b > 0)).double() + 2 * ((a > 0) | (b < 0)).double() + 4 * (~(a > 0)).double(), [X, Y]),
    "sqrt": (torch.sqrt, [positive(2, 3)]),
    "reciprocal": (torch.reciprocal, [positive(2, 3)]),
    "square": (lambda a: a ** 2, [X]),
    # wiring
    "view_permute": (lambda a: a.reshape(4, 6).t().reshape(2, 12).permute(1, 0), [X]),
    "transpose_expand": (lambda a: a.transpose(0, 2).unsqueeze(0).expand(3, -1, -1, -1), [X]),
    "squeeze": (lambda a: a[:, :1].squeeze(1), [X]),
    "slice_step": (lambda a: a[:, 1:, ::2] + 0, [X]),
    "select": (lambda a: a[1, :, 2], [X]),
    "cat_stack": (lambda a, b: torch.cat([a, torch.stack([b[0], b[1]])], dim=2), [X, Y]),
    "split_chunk": (lambda a: torch.chunk(a, 2, -1)[1] * 1 + torch.split(a, [1, 3], -1)[1][..., :2].sum(-1, keepdim=True), [X]),
    "unbind": (lambda a: a.unbind(1)[2], [X]),
    "flip_roll": (lambda a: torch.flip(a, [-1]) + torch.roll(a, 1, 1), [X]),
    "repeat": (lambda a: a.repeat(1, 2, 1), [X]),
    "index_const": (lambda a: a[:, torch.tensor([2, 0, 2])], [X]),
    "index_select": (lambda a: torch.index_select(a, 2, torch.tensor([3, 1])), [X]),
    "gather_const": (lambda a: torch.gather(a, 2, torch.tensor([[[0, 3]] * 3] * 2)), [X]),
    "tril_triu": (lambda a: torch.tril(a) + torch.triu(a, 1), [randn(4, 4)]),
    "pad_zero": (lambda a: F.pad(a, (1, 2, 0, 1)), [X]),
    "pad_value": (lambda a: F.pad(a, (1, 1), value=0.5), [X]),
    "pad_negative": (lambda a: F.pad(a, (-1, 1)), [X]),
    "upsample_nearest": (lambda a: F.interpolate(a, scale_factor=2, mode="nearest"), [IMG]),
    "max_sum_tree": (lambda a: a.amax(dim=(0, 2)), [X]),
    "amin": (lambda a: a.amin(dim=-1, keepdim=True), [X]),
    "any_all": (lambda a: (a > 0).any(dim=-1).double() + 2 * (a > -2).all(dim=-1).double(), [X]),
    "embedding_const": (lambda a: F.embedding(torch.tensor([[3, 1], [0, 3]]), a), [randn(5, 3)]),
}

CLOSE = {
    "exp": (torch.exp, [X]),
    "elu": (F.elu, [X]),
    "prod": (lambda a: torch.prod(a, 1) + torch.prod(a), [X]),
    "batch_norm": (lambda a, m, v: F.batch_norm(a, m, v.abs(), m * 2, v, eps=1e-5), [IMG, randn(4), randn(4)]),
    "logsumexp": (lambda a: torch.logsumexp(a, -1), [X]),
    "erf": (torch.erf, [X]),
    "sigmoid": (torch.sigmoid, [X]),
    "silu": (F.silu, [X]),
    "tanh": (torch.tanh, [X]),
    "log": (torch.log, [positive(2, 3)]),
    "sin_cos": (lambda a: torch.sin(a) + torch.cos(3 * a), [X]),
    "log1p_expm1": (lambda a: torch.log1p(a) + torch.expm1(a), [positive(2, 3)]),
    "softplus": (F.softplus, [X * 4]),
    "log_softmax": (lambda a: F.log_softmax(a, -1), [X]),
    "gelu": (F.gelu, [X]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [X]),
    "rsqrt": (torch.rsqrt, [positive(5)]),
    "cube": (lambda a: a ** 3, [X]),
    "pow_7": (lambda a: a ** 7, [X]),
    "pow_minus_2": (lambda a: a ** -2, [positive(5)]),
    "vector_norms": (lambda a: F.normalize(a, dim=-1) + torch.linalg.vector_norm(a, 1, dim=(0, 1)) + torch.linalg.vector_norm(a, float("inf"), dim=0), [X]),
    "pow_half": (lambda a: a ** 0.5 + a ** -0.5, [positive(5)]),
    "sum": (lambda a: a.sum(dim=(0, 2)), [X]),
    "sum_all": (torch.sum, [X]),
    "mean": (lambda a: a.mean(-1, keepdim=True) + a.mean(), [X]),
    "var": (lambda a: torch.var(a, dim=1).sum(-1) + torch.var(a, dim=-1, correction=0).sum(-1), [X]),
    "var_mean": (lambda a: torch.stack(torch.var_mean(a, dim=2)), [X]),
    "cumsum": (lambda a: torch.cumsum(a, 1), [X]),
    "softmax": (lambda a: torch.softmax(a, -1) + torch.softmax(a, 0), [X]),
    "masked_softmax": (lambda a: a.masked_fill(torch.eye(4, dtype=torch.bool), float("-inf")).softmax(-1), [randn(3, 4, 4)]),
    "mm": (torch.mm, [randn(3, 4), randn(4, 5)]),
    "bmm": (torch.bmm, [randn(2, 3, 4), randn(2, 4, 5)]),
    "matmul_4d": (torch.matmul, [randn(2, 2, 3, 4), randn(2, 2, 4, 5)]),
    "linear": (F.linear, [randn(2, 3, 4), randn(5, 4), randn(5)]),
    "addmm_scaled": (lambda a, b, c: torch.addmm(c, a, b, beta=0.5, alpha=2.0), [randn(3, 4), randn(4, 5), randn(3, 5)]),
    "conv2d": (lambda a, w, b: F.conv2d(a, w, b, padding=1), [IMG, randn(5, 4, 3, 3), randn(5)]),
    "conv2d_strided": (lambda a, w, b: F.conv2d(a, w, b, stride=2, padding=(1, 0), dilation=(1, 2), groups=2),
                       [IMG, randn(4, 2, 3, 2), randn(4)]),
    "conv_transpose2d": (lambda a, w, b: F.conv_transpose2d(a, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)),
                         [IMG, randn(4, 3, 3, 2), randn(6)]),
    "conv_transpose1d": (lambda a, w: F.conv_transpose1d(a, w, stride=3, padding=2), [randn(1, 3, 5), randn(3, 2, 4)]),
    "conv1d": (lambda a, w: F.conv1d(a, w, padding=2, groups=3), [randn(1, 3, 7), randn(3, 1, 3)]),
    "avg_pool": (lambda a: torch.cat([F.avg_pool2d(a, 2).flatten(), F.avg_pool2d(a, 3, stride=3).flatten()]), [IMG]),
    "avg_pool_padded": (lambda a: F.avg_pool2d(a, 3, stride=2, padding=1, count_include_pad=False), [IMG]),
    "layer_norm": (lambda a, w, b: F.layer_norm(a, (4,), w, b, eps=1e-5), [X, randn(4), randn(4)]),
    "layer_norm_2d": (lambda a: F.layer_norm(a, (3, 4)), [X]),
    "instance_norm": (lambda a, w, b: F.instance_norm(a, weight=w, bias=b, eps=1e-5), [IMG, randn(4), randn(4)]),
    "group_norm": (lambda a, w, b: F.group_norm(a, 2, w, b), [IMG, randn(4), randn(4)]),
    "rms_norm": (lambda a, w: F.rms_norm(a, (4,), w, eps=1e-6), [X, randn(4)]),
    "upsample_bilinear": (lambda a: F.interpolate(a, size=(9, 11), mode="bilinear"), [IMG]),
    "upsample_bicubic": (lambda a: F.interpolate(a, scale_factor=2, mode="bicubic"), [IMG]),
    "sdpa": (F.scaled_dot_product_attention, [randn(1, 2, 5, 4), randn(1, 2, 6, 4), randn(1, 2, 6, 3)]),
    "sdpa_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    [randn(1, 2, 5, 4), randn(1, 2, 5, 4), randn(1, 2, 5, 3)]),
    "sdpa_bool_mask": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=MASK),
                       [randn(2, 5, 4), randn(2, 6, 4), randn(2, 6, 3)]),
    "sdpa_float_mask": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=torch.triu(torch.full((5, 5), float("-inf")), 1) + 0.5, scale=0.3),
                        [randn(2, 5, 4), randn(2, 5, 4), randn(2, 5, 3)]),
    "sdpa_gqa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                 [randn(1, 4, 5, 4), randn(1, 2, 5, 4), randn(1, 2, 5, 4)]),
}


def traced_and_torch(case):
    """Pairs (circuit output at p = 53, torch float64 output) of one case."""
    f, inputs = case
    module = wrap(f, len(inputs))
    result, _ = run(module, inputs)
    return list(zip(outputs(result), reference(module, inputs)))


@pytest.mark.parametrize("name", sorted(EXACT))
def test_op_agrees_bit_for_bit_with_torch(name):
    for got, want in traced_and_torch(EXACT[name]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(CLOSE))
def test_op_agrees_with_torch_within_float64_rounding(name):
    for got, want in traced_and_torch(CLOSE[name]):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * max(1.0, float(np.abs(want).max())))


def test_embedding_with_a_circuit_valued_index_is_a_one_hot_lookup():
    table = torch.nn.Embedding(7, 3).double()
    tokens = torch.tensor([[4, 0, 6, 4]])
    result, graph = run(table, [tokens])
    np.testing.assert_array_equal(result["out"], reference(table, [tokens])[0])
    assert graph.inputs.keys() == {"weight", "input"}
    assert {graph.node(i).prim.name for i in range(len(graph.nodes))} >= {"compare", "min", "mul", "sum"}
