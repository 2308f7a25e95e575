"""The patterns of official research code (the VAR and FlowAR releases) through the torch front end,
each reproduced by a small module of our own: evaluation against PyTorch float64 at p = 53, exact
depth where it is derived by hand from docs/torch.md, and every refusal one clear line."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from unittest import mock

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from torch import nn  # noqa: E402
import reference as R  # noqa: E402
from torch_cases import reference, run, wrap  # noqa: E402

from tc0sim.cli.main import main  # noqa: E402
from tc0sim.errors import ConfigError, GraphError  # noqa: E402
from tc0sim.fp import Format  # noqa: E402
from tc0sim.frontends.torch import trace  # noqa: E402
from tc0sim.interp.evaluate import evaluate  # noqa: E402
from tc0sim.interp.depth import depth  # noqa: E402
from tc0sim.ir.vectors import vec  # noqa: E402


def close(got, want):
    want = np.asarray(want, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=1e-12, atol=1e-13 * max(1.0, float(np.abs(want).max())))


def agrees(module, inputs):
    """The circuit at p = 53 against the module in float64 on the same inputs; the graph."""
    module = module.double().eval()
    result, graph = run(module, inputs)
    for i, want in enumerate(reference(module, inputs)):
        close(result["out" if len(result) == 1 else f"out{i}"], want)
    return graph


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class AdaLNAttention(nn.Module):
    """VAR's AdaLNSelfAttn pattern: a qkv bias concatenated from parameters and a zero buffer, q/k
    l2-normalised with a clamped, exponentiated per-head scale, sdpa with a scale, in-place adaLN."""

    def __init__(self, c=8, heads=2):
        super().__init__()
        self.heads, self.c = heads, c
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.randn(c)), nn.Parameter(torch.randn(c))
        self.register_buffer("zero_k_bias", torch.zeros(c))
        self.scale_mul = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))
        self.ln = nn.LayerNorm(c, eps=1e-6, elementwise_affine=False)
        self.proj = nn.Linear(c, c)

    def forward(self, x_BLC, cond_BD):
        b, n, c = x_BLC.shape
        g1, g2, s1, s2, h1, h2 = self.ada(cond_BD).view(-1, 1, 6, c).unbind(2)
        h = self.ln(x_BLC).mul(s1.add(1)).add_(h1)
        qkv = F.linear(h, self.qkv.weight, torch.cat((self.q_bias, self.zero_k_bias, self.v_bias)))
        q, k, v = qkv.view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        q = F.normalize(q, dim=-1).mul(self.scale_mul.clamp_max(math.log(100)).exp())
        k = F.normalize(k, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0).transpose(1, 2).reshape(b, n, c)
        x = x_BLC + self.proj(out).mul_(g1)
        return x + self.ln(x).mul(s2.add(1)).add_(h2).mul(g2)


def test_var_style_adaln_attention_agrees_and_keeps_argument_names():
    torch.manual_seed(0)
    graph = agrees(AdaLNAttention(), [randn(2, 5, 8), randn(2, 8, seed=1)])
    assert {"x_BLC", "cond_BD"} <= set(graph.inputs)  # forward's own names, not torch's lower-cased ones
    assert "zero_k_bias" in graph.inputs  # a finite float buffer stays a weight


class MaskBuffer(nn.Module):
    """An additive −∞ attention mask kept as a float buffer (VAR's attn_bias_for_masking, FlowAR's mask)."""

    def __init__(self, n=5, persistent=True):
        super().__init__()
        levels = torch.tensor([0, 1, 1, 2, 2][:n])
        self.register_buffer("bias", torch.where(levels[:, None] >= levels[None, :], 0.0, -torch.inf).view(1, 1, n, n),
                             persistent=persistent)
        self.register_buffer("table", torch.linspace(0.5, 1.5, 4), persistent=False)

    def forward(self, q):
        return F.scaled_dot_product_attention(q, q, q, attn_mask=self.bias) * self.table


def test_infinite_and_non_persistent_float_buffers_are_folded():
    q = randn(1, 2, 5, 4)
    graph = agrees(MaskBuffer(), [q])
    assert "bias" not in graph.inputs and "table" not in graph.inputs


class LearnedMask(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(1, 1, 4, 4))

    def forward(self, q):
        return F.scaled_dot_product_attention(q, q, q, attn_mask=self.bias)


def test_a_learned_float_attention_mask_is_added_to_the_scores():
    torch.manual_seed(0)
    graph = agrees(LearnedMask(), [randn(2, 1, 4, 3)])
    assert "bias" in graph.inputs


@pytest.mark.skipif(torch.cuda.is_available(), reason="Tensor.cuda is left alone where CUDA exists")
@pytest.mark.skipif(torch.cuda.is_available(), reason="Tensor.cuda is left alone where CUDA exists")
def test_tensor_cuda_is_the_identity_while_tracing_without_cuda():
    def rope_like(x):  # FlowAR's VisionRotaryEmbeddingFast builds its positions with .cuda()
        t = torch.arange(x.shape[-1]).cuda() / x.shape[-1]
        return x * t.cos() + x.flip(-1) * t.sin()

    x = randn(2, 4)
    result, _ = run(wrap(rope_like, 1), [x])
    with mock.patch.object(torch.Tensor, "cuda", lambda self: self):
        close(result["out"], rope_like(x))
    with pytest.raises((RuntimeError, AssertionError)):  # outside the trace, .cuda() still fails as it should
        torch.arange(2).cuda()


@pytest.mark.parametrize("shape,size", [((1, 2, 5, 7), (2, 3)), ((2, 1, 8, 8), (3, 3)), ((1, 3, 4, 4), (2, 2)), ((1, 1, 3, 3), (5, 4))])
def test_area_interpolation_agrees_and_is_one_sum_then_one_division(shape, size):
    graph = agrees(wrap(lambda x: F.interpolate(x, size=size, mode="area"), 1), [randn(*shape)])
    assert depth(graph).critical == [vec(d_std=1, d_sum=1)]


def test_writes_into_slices_and_static_indices_agree():
    def writes(a):
        b = a * 1
        b[0, 0, 0] += a[1, 1, 1] * 0 + 5  # VAR.forward with prog_si == 0
        b[:, ::2, 3] = a[:, ::2, 4]
        b[..., -1] *= 2
        b[:, 1] = 3.0
        return torch.index_put(b, (torch.tensor([1, 0]), torch.tensor([2, 2])), a[0, 0, :] * 3)

    agrees(wrap(writes, 1), [randn(2, 5, 6)])
    agrees(wrap(lambda a: torch.diagonal_scatter(a[0, :4, :4], a[1, 0, :4]), 1), [randn(2, 5, 6)])


def test_a_write_under_a_circuit_valued_mask_is_a_selection():
    def masked(a):
        b = a.clone()
        b[a > 0] = 0.5
        return b

    agrees(wrap(masked, 1), [randn(3, 4)])


def test_an_accumulating_write_is_refused():
    with pytest.raises(GraphError, match="accumulate=True"):
        trace(wrap(lambda a: torch.index_put(a.clone(), (torch.tensor([0]),), a[1], accumulate=True), 1), (randn(2, 3),))


ORDER = {
    "sort": lambda a: a.sort(dim=-1),
    "sort descending dim 0": lambda a: a.sort(dim=0, descending=True),
    "stable sort": lambda a: torch.sort(a, stable=True, dim=-1),
    "topk": lambda a: a.topk(3, dim=-1)[0],
    "topk smallest": lambda a: a.topk(2, dim=-1, largest=False),
    "argmax": lambda a: a.argmax(dim=-1),
    "argmin keepdim": lambda a: a.argmin(dim=0, keepdim=True),
    "argmax of all": lambda a: a.argmax(),
    "max with index": lambda a: a.max(dim=-1),
    "min value": lambda a: a.min(dim=0, keepdim=True)[0],
    "max of all": lambda a: a.max(),
    "VAR top-k filter": lambda a: a.masked_fill(a < a.topk(2, sorted=False, dim=-1)[0].amin(dim=-1, keepdim=True), -1e4),
}


@pytest.mark.parametrize("name", sorted(ORDER))
def test_order_ops_agree_with_torch_including_ties(name):
    agrees(wrap(ORDER[name], 1), [randn(3, 6)])
    ties = torch.tensor([[3.0, 1.0, 3.0, 2.0, 1.0, 3.0], [0.0, 0.0, -1.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
    if name not in ("topk", "topk smallest", "sort", "sort descending dim 0"):  # torch leaves the order of ties open there
        agrees(wrap(ORDER[name], 1), [ties])


def test_sort_by_rank_counting_has_constant_depth():
    graph = trace(wrap(lambda a: a.sort(dim=-1)[0], 1).double(), (randn(2, 7),))
    # compare, 1 − compare, ⊕ of the rank, two compares and a min for [rank = k], ⊗, ⊕
    assert depth(graph).critical == [vec(d_std=5, d_sum=2)]


def test_powers_of_a_constant_base_agree():
    agrees(wrap(lambda a: torch.pow(2.0, a) + torch.exp2(a) + 10 ** (a / 4), 1), [randn(3, 4)])
    graph = trace(wrap(lambda a: torch.exp2(a), 1).double(), (randn(3),))
    assert depth(graph).critical == [vec(d_std=1, d_exp=1, d_log=1)]
    with pytest.raises(GraphError, match="base ≤ 0"):
        trace(wrap(lambda a: (-2.0) ** a, 1), (randn(3),))


class ClassDrop(nn.Module):
    """VAR.forward's class drop: torch.rand decides which labels become the unconditional class."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 3)

    def forward(self, label, x):
        label = torch.where(torch.rand(label.shape[0]) < 0.1, 4, label)
        return self.emb(label) + x


class UniformsAsInput(nn.Module):
    """The documented wrapper: the random numbers become an input of forward."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, label, x, u):
        with mock.patch.object(torch, "rand", lambda *a, **k: u):
            return self.inner(label, x)


def test_a_random_op_is_reported_and_the_wrapper_with_the_uniforms_as_input_agrees():
    torch.manual_seed(0)
    inner = ClassDrop().double()
    with pytest.raises(ConfigError, match=r"random ops are not lowered \(pass the random numbers as inputs of forward\): aten\.rand"):
        trace(inner, (torch.tensor([1, 2]), randn(2, 3)))
    label, x, u = torch.tensor([1, 2, 3]), randn(3, 3), torch.tensor([0.05, 0.5, 0.07], dtype=torch.float64)
    agrees(UniformsAsInput(inner), [label, x, u])


class Sampler(nn.Module):
    """The VAR sampler's pattern: a generator kept on the module, multinomial over a softmax."""

    def __init__(self):
        super().__init__()
        self.rng = torch.Generator().manual_seed(0)
        self.head = nn.Linear(4, 6)

    def forward(self, x):
        return torch.multinomial(self.head(x).softmax(-1), 1, generator=self.rng)


def test_a_sampler_with_a_generator_is_reported_as_random():
    with pytest.raises(ConfigError, match=r"random ops are not lowered .*aten\.multinomial"):
        trace(Sampler(), (torch.zeros(2, 4),))


def test_casts_to_bool_and_widening_integer_casts_are_lowered():
    x = randn(2, 5)
    x[0, 1] = 0
    agrees(wrap(lambda a: a.bool().double() + (a > 0).long() * 3 + (a < 0).int().long(), 1), [x])


def test_a_cast_of_circuit_values_to_integers_says_what_to_do():
    with pytest.raises(GraphError, match="pass it as an integer input of forward"):
        trace(wrap(lambda t: (t * 1000).long().float(), 1), (torch.zeros(2),))


class ForwardVarArgs(nn.Module):
    def forward(self, *xs):
        return xs[0]


def test_forward_with_star_args_is_refused_by_the_api():
    with pytest.raises(ConfigError, match=r"takes \*args"):
        trace(ForwardVarArgs(), (torch.zeros(2),))


UGLY = '''
import torch

class Out(torch.nn.Module):
    def __init__(self, what):
        super().__init__()
        self.what = what

    def forward(self, x):
        if self.what == "none":
            return None
        if self.what == "str":
            return x * 2, "label"
        if self.what == "branch":
            return x if x.sum() > 0 else -x
        return x


class Masked(torch.nn.Module):
    def forward(self, x, attn_bias):  # VAR's blocks take attn_bias=None at inference
        return x * 2 if attn_bias is None else x + attn_bias

def masked():
    return Masked()

def make(what="x"):
    return Out(what)

def fails():
    raise ValueError("boom")
'''


BAD = {  # model-file body → words of its one error line
    "the factory raises": ("module: ugly.py:fails\ninputs: {x: {shape: [2]}}", "fails(**kwargs) failed: ValueError: boom"),
    "no such file": ("module: missing.py:make\ninputs: {x: {shape: [2]}}", "missing.py does not exist"),
    "forward returns None": ("module: ugly.py:make\nkwargs: {what: none}\ninputs: {x: {shape: [2]}}", "output 0 of forward is NoneType"),
    "forward returns a string": ("module: ugly.py:make\nkwargs: {what: str}\ninputs: {x: {shape: [2]}}",
                                 "output 1 of forward is str 'label', not a tensor"),
    "a branch on values": ("module: ugly.py:make\nkwargs: {what: branch}\ninputs: {x: {shape: [2]}}", "failed: GuardOnDataDependentSymNode"),
    "an input forward lacks": ("module: ugly.py:make\ninputs: {x: {shape: [2]}, y: {shape: [2]}}", "inputs.y: Out.forward takes x"),
    "a shape in a dim not given": ("module: ugly.py:make\ninputs: {x: {shape: [n]}}\ndims: {m: 3}", "unknown name 'n'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_ugly_model_files_are_one_error_line_and_exit_2(tmp_path, case):
    body, words = BAD[case]
    (tmp_path / "ugly.py").write_text(UGLY, encoding="utf-8")
    (tmp_path / "model.yaml").write_text(f"kind: torch\n{body}\nprecision: 24\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["depth", str(tmp_path / "model.yaml")])
    assert result.exit_code == 2, result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [result.output.strip()]
    assert result.output.startswith("error: ") and words in result.output


CHATTY = '''
import torch

class Chatty(torch.nn.Module):
    def forward(self, x):
        print("forward runs")
        return x * 2

def make():
    print("[constructor] ==== as VAR prints ====")
    return Chatty()
'''


def test_what_the_users_code_prints_does_not_mix_with_a_json_report(tmp_path):
    (tmp_path / "chatty.py").write_text(CHATTY, encoding="utf-8")
    (tmp_path / "model.yaml").write_text("kind: torch\nmodule: chatty.py:make\ninputs: {x: {shape: [3]}}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["depth", str(tmp_path / "model.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["depth"]["linear"] == ["d_std"]
    assert "[constructor]" in result.stderr


def _fractions(values, p):
    fmt = Format(p)
    return np.vectorize(fmt.to_fraction, otypes=[object])(values)


@pytest.mark.parametrize("p", [5, 11])
def test_area_pooling_at_small_p_is_one_rounded_sum_then_one_rounded_division(p):
    x = randn(1, 1, 5, 7, seed=p)
    graph = trace(wrap(lambda a: F.interpolate(a, size=(3, 2), mode="area"), 1).double(), (x,))
    got = _fractions(evaluate(graph, p, inputs={"a": x.numpy()})["out"], p)
    rounded = R.to_fractions(x.numpy(), p)[0, 0]
    for i, j in np.ndindex(3, 2):  # torch's own windows: the pixels a one-hot input reaches output (i, j) from
        window = [(r, c) for r, c in np.ndindex(5, 7)
                  if F.adaptive_avg_pool2d(torch.eye(35, dtype=torch.float64)[7 * r + c].view(1, 1, 5, 7), (3, 2))[0, 0, i, j] != 0]
        total = R.round_fraction(sum((rounded[rc] for rc in window), Fraction(0)), p)
        assert got[0, 0, i, j] == R.round_fraction(total / len(window), p)


@pytest.mark.parametrize("p", [4, 24])
def test_sorted_values_and_indices_are_exact_at_small_p(p):
    x = torch.tensor([[1.5, -2.0, 1.5, 0.5, -2.0, 3.0], [0.0, 0.0, -1.0, 2.5, 2.5, 0.0]], dtype=torch.float64)
    graph = trace(wrap(lambda a: torch.sort(a, stable=True, descending=True, dim=-1), 1).double(), (x,))
    out = evaluate(graph, p, inputs={"a": x.numpy()})
    order = np.argsort(-x.numpy(), axis=-1, kind="stable")
    assert _fractions(out["out0"], p).tolist() == np.take_along_axis(R.to_fractions(x.numpy(), p), order, -1).tolist()
    assert _fractions(out["out1"], p).tolist() == order.tolist()


def test_an_input_given_as_null_is_passed_as_none(tmp_path):
    (tmp_path / "ugly.py").write_text(UGLY, encoding="utf-8")
    (tmp_path / "model.yaml").write_text("kind: torch\nmodule: ugly.py:masked\ninputs: {x: {shape: [3]}, attn_bias: null}\n",
                                         encoding="utf-8")
    result = CliRunner().invoke(main, ["depth", str(tmp_path / "model.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["depth"]["linear"] == ["d_std"]  # x · 2, not x + attn_bias (also d_std) ...
    sized = CliRunner().invoke(main, ["size", str(tmp_path / "model.yaml"), "--format", "json"])
    assert "mul" in sized.stdout and '"add"' not in sized.stdout  # ... as the size's only product shows
