"""The operators of released FlowAR (rms_norm, gelu/glu, rope, sdpa, modulate) against float64 PyTorch
written here from the official modules, an exact-rational oracle for the GELU's rounding chain, and
depths derived by hand."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

from reference import erf_p, round_fraction  # noqa: E402
from reference_flowar_release import rope_apply  # noqa: E402
from tc0sim.fp import Format  # noqa: E402
from tc0sim.interp.depth import depth  # noqa: E402
from tc0sim.interp.evaluate import evaluate  # noqa: E402
from tc0sim.ir.graph import Builder  # noqa: E402
from tc0sim.ir.vectors import vec  # noqa: E402
from tc0sim.ops.glu import gelu, glu  # noqa: E402
from tc0sim.ops.linear import linear  # noqa: E402
from tc0sim.ops.mha import merge_heads, modulate, sdpa, split_heads  # noqa: E402
from tc0sim.ops.rmsnorm import rms_norm  # noqa: E402
from tc0sim.ops.rope import rope, rope_tables  # noqa: E402

F53 = Format(53)
RNG = np.random.default_rng(12)


def run(build, inputs: dict[str, np.ndarray], p: int = 53):
    b = Builder()
    tensors = {name: b.input(name, value.shape) for name, value in inputs.items()}
    b.output("out", build(b, **tensors))
    return b.graph, Format(p).to_float64_array(evaluate(b.graph, p, inputs)["out"]) if p == 53 else evaluate(b.graph, p, inputs)["out"]


def close(got, want, ulps: float = 64):
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=ulps * 2.0**-53, atol=ulps * 2.0**-53 * np.abs(want).max())


@pytest.mark.parametrize("with_weight", [False, True])
def test_rms_norm_matches_torch(with_weight):
    x, w = RNG.standard_normal((3, 4, 6)), RNG.standard_normal(6)
    inputs = {"x": x, "w": w} if with_weight else {"x": x}
    graph, got = run(lambda b, x, w=None: rms_norm(b, x, w), inputs)
    t = torch.tensor(x)
    want = t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6) * (torch.tensor(w) if with_weight else 1)
    close(got, want.numpy())
    assert depth(graph).critical == [vec(d_std=5 + with_weight, d_sum=1, d_sqrt=1)]


def test_gelu_is_the_exact_gelu_and_rounds_each_step_once():
    x = np.concatenate([RNG.standard_normal(20) * 3, [0.0, -5.5, 7.25, 1e-8]])
    graph, got = run(lambda b, x: gelu(b, x), {"x": x})
    close(got, TF.gelu(torch.tensor(x)).numpy(), ulps=8)
    assert depth(graph).critical == [vec(d_std=3, d_erf=1)]
    p = 24
    _, exact = run(lambda b, x: gelu(b, x), {"x": x}, p=p)
    F = Format(p)
    import mpmath

    with mpmath.workprec(400):
        _, man, exp, _ = (1 / mpmath.sqrt(2))._mpf_
    inv_sqrt2 = Fraction(int(man)) * Fraction(2) ** int(exp)
    for v, out in zip(x, exact):
        xv = round_fraction(Fraction(v), p)
        u = round_fraction(xv * round_fraction(inv_sqrt2, p), p)
        s = round_fraction(erf_p(u, p) + 1, p) if u else Fraction(1)
        want = round_fraction(round_fraction(xv / 2, p) * s, p)
        assert F.to_fraction(out) == want


def test_glu_is_timm_swiglu_with_gelu():
    x = RNG.standard_normal((2, 3, 4))
    names = {"g.weight": (5, 4), "g.bias": (5,), "x.weight": (5, 4), "x.bias": (5,), "o.weight": (4, 5), "o.bias": (4,)}
    weights = {n: RNG.standard_normal(s) * 0.5 for n, s in names.items()}
    b = Builder()
    xt = b.input("x", x.shape)
    w = {n: b.input(n, s) for n, s in names.items()}
    short = {"mlp.fc1_g": "g", "mlp.fc1_x": "x", "mlp.fc2": "o"}
    b.output("out", glu(b, xt, 5, lambda t, n, o: linear(b, t, w[short[n] + ".weight"], w[short[n] + ".bias"])))
    got = F53.to_float64_array(evaluate(b.graph, 53, {"x": x, **weights})["out"])
    t = {n: torch.tensor(v) for n, v in weights.items()}
    xx = torch.tensor(x)
    want = TF.linear(TF.gelu(TF.linear(xx, t["g.weight"], t["g.bias"])) * TF.linear(xx, t["x.weight"], t["x.bias"]),
                     t["o.weight"], t["o.bias"])
    close(got, want.numpy(), ulps=256)


@pytest.mark.parametrize("head_dim,side", [(4, 1), (8, 2), (16, 4), (12, 3)])
def test_rope_matches_vision_rotary_embedding_fast(head_dim, side):
    x = RNG.standard_normal((2, 3, side * side, head_dim))
    cos, sin = rope_tables(head_dim, side)

    def build(b, x):
        return rope(b, x, b.constant(cos), b.constant(sin))

    graph, got = run(build, {"x": x})
    close(got, rope_apply(torch.tensor(x)).numpy(), ulps=128)
    assert depth(graph).critical == [vec(d_std=2)]


def test_rope_refuses_a_head_width_not_divisible_by_four():
    from tc0sim.errors import ConfigError

    with pytest.raises(ConfigError, match="divisible by 4"):
        rope_tables(6, 2)


@pytest.mark.parametrize("n,m", [(4, 4), (3, 7)])
def test_sdpa_with_heads_matches_torch(n, m):
    q, k, v = RNG.standard_normal((2, n, 6)), RNG.standard_normal((2, m, 6)), RNG.standard_normal((2, m, 6))
    scale = Fraction(1, 3)

    def build(b, q, k, v):
        heads = [split_heads(b, t, 2) for t in (q, k, v)]
        return merge_heads(b, sdpa(b, *heads, scale))

    graph, got = run(build, {"q": q, "k": k, "v": v})
    split = [torch.tensor(t).reshape(2, t.shape[1], 2, 3).transpose(1, 2) for t in (q, k, v)]
    want = TF.scaled_dot_product_attention(*split, scale=1 / 3).transpose(1, 2).reshape(2, n, 6)
    close(got, want.numpy(), ulps=256)
    assert depth(graph).critical == [vec(d_std=4, d_sum=2, d_exp=1)]


def test_modulate_is_adaln():
    x, s, t = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 1, 4)), RNG.standard_normal((2, 1, 4))
    _, got = run(lambda b, x, s, t: modulate(b, x, s, t), {"x": x, "s": s, "t": t})
    assert np.array_equal(got, x * (1 + s) + t)


def test_aattc_attention_is_the_polynomial_kernel_attention():
    """sdpa_aattc = Σ_j P_g(scale⟨q, k_j⟩) v_j / Σ_j P_g(scale⟨q, k_j⟩) with P_g the degree-g Taylor polynomial."""
    from math import factorial

    from tc0sim.ops.mha import sdpa_aattc

    q, k, v = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 5, 4)), RNG.standard_normal((2, 5, 3))
    for g in (1, 2, 3):
        graph, got = run(lambda b, q, k, v: sdpa_aattc(b, q, k, v, Fraction(1, 2), g), {"q": q, "k": k, "v": v})
        s = np.einsum("hnd,hmd->hnm", q, k) / 2
        weights = sum(s**j / factorial(j) for j in range(g + 1))
        want = np.einsum("hnm,hme->hne", weights, v) / weights.sum(-1, keepdims=True)
        close(got, want, ulps=2**12)


def test_aattc_gate_count_grows_slower():
    from tc0sim.audit.flowar_release import gate_exponents

    exponents = gate_exponents((8, 16))
    assert exponents["aattc"] < 2.05 and exponents["exact"] > 3.0
