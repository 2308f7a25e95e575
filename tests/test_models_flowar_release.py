"""flowar_release against a separately written float64 PyTorch FlowAR (tests/reference_flowar_release.py):
parameter names, shapes and counts of the official modules; the sampling schedule; and the whole
sampling circuit evaluated at p = 53 against the float64 forward pass with the same noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference_flowar_release import FlowARRef, KLDecoder  # noqa: E402
from reference_var import randomize, state_arrays  # noqa: E402
from tc0sim.fp import Format  # noqa: E402
from tc0sim.interp.evaluate import evaluate  # noqa: E402
from tc0sim.kinds import build  # noqa: E402
from tc0sim.models.flowar_release import VAE_PREFIX, VARIANTS, guided, parameters, time_index, time_points  # noqa: E402

OFFICIAL = {  # flowar_small/large/huge and the flow heads of the README run commands
    "S": dict(width=768, blocks=6, heads=12, head_width=1024, head_blocks=2, cross=False),
    "L": dict(width=1024, blocks=8, heads=16, head_width=1024, head_blocks=12, cross=True),
    "H": dict(width=1536, blocks=15, heads=16, head_width=1536, head_blocks=12, cross=True),
}


def weight_shapes(graph) -> dict[str, tuple[int, ...]]:
    return {n: graph.node(i).shape for n, i in graph.inputs.items() if graph.node(i).attrs["role"] == "weight"}


@pytest.mark.parametrize("variant", ["S", "L", "H"])
def test_parameters_are_the_official_modules(variant):
    """AR model + flow head: the same names, shapes and count as the official module (built on the
    meta device: no memory). Steps and the VAE do not change the AR/flow weights."""
    with torch.device("meta"):
        ref = FlowARRef(**OFFICIAL[variant])
    expected = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    graph = build("flowar_release", {}, {"variant": variant, "steps": 2, "vae": False})
    shapes = weight_shapes(graph)
    assert shapes == {k: (v if len(v) else ()) for k, v in expected.items()}
    counts = parameters(graph)
    assert counts["transformer"] + counts["flow_head"] == sum(p.numel() for p in ref.parameters())
    assert counts["flow_head"] == sum(p.numel() for p in ref.flownet.parameters())
    assert counts["vae_decoder"] == 0


def test_published_sizes_and_the_kl16_decoder():
    """The counts round to the published 170M / 589M / 1.9B; the KL-16 decoder path (post_quant_conv
    and the LDM decoder) has the reference module's count, names and shapes."""
    published = {"S": 170e6, "L": 589e6, "H": 1.9e9}
    graph = build("flowar_release", {}, {"variant": "S", "steps": 2})
    counts = parameters(graph)
    assert abs(counts["transformer"] + counts["flow_head"] - published["S"]) / published["S"] < 0.02
    with torch.device("meta"):
        vae = KLDecoder(128, (1, 1, 2, 2, 4), 2)
    vae_shapes = {k[len(VAE_PREFIX):]: v for k, v in weight_shapes(graph).items() if k.startswith(VAE_PREFIX)}
    assert vae_shapes == {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    assert counts["vae_decoder"] == sum(p.numel() for p in vae.parameters())
    assert counts["total"] == counts["transformer"] + counts["flow_head"] + counts["vae_decoder"]
    assert sum(counts["by_component"].values()) == counts["total"]
    assert VARIANTS["H"]["steps"] == 50 and VARIANTS["S"]["steps"] == 25


@pytest.mark.parametrize("steps", [2, 4, 7, 25, 50])
def test_schedule_matches_torch(steps):
    t = torch.cat([torch.linspace(1, 0.3, steps // 2, dtype=torch.float64),
                   torch.linspace(0.25, 0, steps // 2 + 1, dtype=torch.float64)])
    if steps == 50:
        t = torch.linspace(1, 0, 51, dtype=torch.float64)
    assert np.allclose([float(x) for x in time_points(steps)], t.tolist(), rtol=0, atol=1e-15)
    indices = (t.to(torch.float32) * 1000).long().tolist()
    assert [time_index(x) for x in time_points(steps)] == indices


def test_guidance_starts_below_the_threshold_and_never_at_the_first_scale():
    from fractions import Fraction

    points = time_points(25)
    assert [guided(Fraction("4.3"), 0, 5, t, Fraction("0.9")) for t in points[:-1]] == [False] * 24
    assert [guided(Fraction("4.3"), 2, 5, t, Fraction("0.9")) for t in points[:-1]] == [False, False] + [True] * 22


SMALL = dict(width=16, blocks=1, heads=2, head_width=16, head_heads=2, head_blocks=1, scales=[1, 2, 4], steps=4,
             classes=3, cfg="3", guidance="0.9", vae_channels=32, vae_mult=[1], vae_res_blocks=0)


def small_case(cross: bool, seed: int, upsample_side: int = 16, **params):
    cfg = dict(SMALL, cross=cross, **params)
    torch.manual_seed(seed)
    ref = FlowARRef(16, 1, 2, 16, 1, cross, scales=(1, 2, 4), channels=16, classes=3, head_heads=2, upsample_side=upsample_side)
    randomize(ref, seed, scale=0.25)
    vae = KLDecoder(32, (1,), 0)
    randomize(vae, seed + 1, scale=0.1)
    gen = torch.Generator().manual_seed(seed + 2)
    noises = [torch.randn(1, s * s, 16, generator=gen, dtype=torch.float64) for s in (1, 2, 4)]
    uncond = [torch.randn(1, s * s, 16, generator=gen, dtype=torch.float64) * 5 for s in (1, 2, 4)]
    label = 1
    with torch.no_grad():
        latent, samples = ref.sample(label, noises, uncond, steps=4, cfg=3.0, guidance=0.9)
        image = vae(latent)
    inputs = {**state_arrays(ref), **state_arrays(vae, VAE_PREFIX)}
    inputs["class_onehot"] = np.eye(3)[label]
    inputs.update({f"noise.{k + 1}": n.numpy() for k, n in enumerate(noises)})
    return cfg, inputs, samples, image


@pytest.mark.parametrize("cross", [False, True], ids=["Block_v1", "Block_v2"])
def test_sampling_circuit_agrees_with_float64_torch(cross):
    """Same weights, same conditional noise (the unconditional noise, large and different, must not
    matter): every scale's sample and the decoded image agree within float64 rounding."""
    cfg, inputs, samples, image = small_case(cross, seed=3 + cross)
    graph = build("flowar_release", {}, cfg)
    out = evaluate(graph, 53, inputs)
    F = Format(53)
    for k, s in enumerate((1, 2, 4)):
        got = F.to_float64_array(out[f"sample.{k + 1}"]).reshape(s * s, 16)
        want = samples[k].numpy()
        assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max()), (k, np.abs(got - want).max())
    got = F.to_float64_array(out["out"])
    want = image[0].permute(1, 2, 0).numpy()
    assert got.shape == (4, 4, 3)
    assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max()), np.abs(got - want).max()
    assert np.abs(want).max() > 1e-3 and not math.isnan(float(np.abs(want).max()))


def test_eval_reads_official_checkpoints(tmp_path):
    """``eval --weights`` with a FlowAR state_dict (plus its training buffers) and a KL-16 checkpoint
    ``{"model": state_dict}`` (plus the encoder the sampler does not run) gives the float64 torch image;
    a missing tensor is one clear error."""
    from click.testing import CliRunner

    from tc0sim.cli.main import main

    cfg, inputs, _, image = small_case(True, seed=7)
    circuit_inputs = ("class_onehot", "noise.")
    ref_state = {k: torch.tensor(v) for k, v in inputs.items() if not k.startswith((VAE_PREFIX, *circuit_inputs))}
    ref_state["mask"] = torch.zeros(1, 1, 21, 21)
    ref_state["encoder_blocks.0.attn.rope.freqs"] = torch.ones(2)
    vae_state = {k[len(VAE_PREFIX):]: torch.tensor(v) for k, v in inputs.items() if k.startswith(VAE_PREFIX)}
    vae_state["encoder.conv_in.weight"] = torch.ones(3)
    torch.save(ref_state, tmp_path / "flowar.pth")
    torch.save({"model": vae_state}, tmp_path / "kl16.ckpt")
    np.savez(tmp_path / "in.npz", **{k: v for k, v in inputs.items() if k.startswith(circuit_inputs)})
    model = tmp_path / "m.yaml"
    model.write_text("kind: flowar_release\nprecision: 53\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in cfg.items()))
    out = tmp_path / "out.npz"
    result = CliRunner().invoke(main, ["eval", str(model), "--inputs", str(tmp_path / "in.npz"), "--output", str(out),
                                       "--weights", str(tmp_path / "flowar.pth"), "--weights", f"vae.={tmp_path / 'kl16.ckpt'}"])
    assert result.exit_code == 0, result.output
    want = image[0].permute(1, 2, 0).numpy()
    assert np.allclose(np.load(out)["out"], want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    del ref_state["z_proj.bias"]
    torch.save(ref_state, tmp_path / "flowar.pth")
    bad = CliRunner().invoke(main, ["eval", str(model), "--inputs", str(tmp_path / "in.npz"), "--output", str(out),
                                    "--weights", str(tmp_path / "flowar.pth"), "--weights", f"vae.={tmp_path / 'kl16.ckpt'}"])
    assert bad.exit_code == 2 and "z_proj.bias" in bad.output


@pytest.mark.parametrize("cross", [False, True], ids=["Block_v1", "Block_v2"])
def test_shared_blocks_and_flow_heads_give_the_inlined_circuit(cross):
    """AR blocks, flow-head blocks, the velocity and the time embedding as shared bodies: the
    depth, size, parameters, witness scopes and values of the plain build."""
    from tc0sim.interp.depth import depth
    from tc0sim.interp.paths import group_path
    from tc0sim.interp.size import size

    cfg, inputs, _, _ = small_case(cross, seed=1)
    plain, shared = build("flowar_release", {}, cfg), build("flowar_release", {}, cfg, share=True)
    assert shared.has_calls and len(shared.nodes) < len(plain.nodes)
    result = depth(shared)
    assert result.critical == depth(plain).critical
    assert size(shared).as_dict() == size(plain).as_dict()
    assert parameters(shared) == parameters(plain)
    for crit in result.critical:
        groups = result.witness_groups(crit)
        assert [g.operator for g in groups] == [g.operator for g in group_path(result.witness(crit))]
    assert any(g.operator.endswith("velocity/head_block/mlp") for g in groups)
    a, b = evaluate(plain, 24, inputs, values="float64"), evaluate(shared, 24, inputs, values="float64")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_latent_side_option_and_integer_label_agree_with_float64_torch():
    """``next_scale: latent`` (bicubic to s_K = 4 as in training, against the reference resizing to 4)
    and ``label: 1`` (a gather of class row 1; no class input) give the reference's samples; the
    official 16 × 16 target gives different ones at these scales."""
    cfg, inputs, samples, _ = small_case(False, seed=5, upsample_side=4, next_scale="latent", label=1, vae=False)
    del inputs["class_onehot"]
    graph = build("flowar_release", {}, cfg)
    assert "class_onehot" not in graph.inputs and graph.node(graph.inputs["class_emb.weight"]).shape == (1001, 16)
    inputs = {k: v for k, v in inputs.items() if k in graph.inputs}
    F = Format(53)
    out = evaluate(graph, 53, inputs)
    for k, s in enumerate((1, 2, 4)):
        got, want = F.to_float64_array(out[f"sample.{k + 1}"]).reshape(s * s, 16), samples[k].numpy()
        assert np.allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max()), (k, np.abs(got - want).max())
    official = evaluate(build("flowar_release", {}, dict(cfg, next_scale="sampler")), 53, inputs)
    assert not np.allclose(F.to_float64_array(official["sample.3"]), F.to_float64_array(out["sample.3"]))


def test_flow_head_keeps_ratio_4_and_the_class_table_has_1001_rows():
    """Parameter counts of the official modules (the reference's FlowNet has MLP ratio 4 and the 1001-row
    class table whatever the classes): at mlp_ratio 2 only the AR blocks shrink."""
    ref = FlowARRef(16, 1, 2, 16, 1, True, scales=(1, 2, 4), channels=16, classes=3, head_heads=2)
    params = dict(SMALL, cross=True, vae=False)
    four, two = (parameters(build("flowar_release", {}, dict(params, mlp_ratio=r))) for r in (4, 2))
    head = sum(p.numel() for p in ref.flownet.parameters())
    assert four["flow_head"] == two["flow_head"] == head
    assert four["transformer"] == sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("flownet."))
    glu_per_block = 3 * 16 * (int(16 * 4 * 2 / 3) - int(16 * 2 * 2 / 3)) + (int(16 * 4 * 2 / 3) - int(16 * 2 * 2 / 3)) * 2
    assert four["transformer"] - two["transformer"] == 2 * glu_per_block  # one encoder and one decoder block
    assert four["by_component"]["transformer/class_emb"] == 1001 * 16


def test_flowar_inputs_have_domains():
    from tc0sim.errors import ConfigError
    from tc0sim.interp.evaluate import random_inputs

    graph = build("flowar_release", {}, dict(SMALL, cross=False, vae=False))
    drawn = random_inputs(graph, seed=2, scale=7.0)
    noise = np.concatenate([drawn[f"noise.{k}"].ravel() for k in (1, 2, 3)])
    assert abs(noise.std() - 1) < 0.25  # standard normal noise, not scaled by the weights' scale
    assert drawn["class_onehot"].sum() == 1 and set(drawn["class_onehot"].tolist()) == {0.0, 1.0}
    with pytest.raises(ConfigError, match="input 'class_onehot' must hold one-hot rows"):
        evaluate(graph, 24, {"class_onehot": np.array([0.0, 0.0, 0.0])})
    with pytest.raises(ConfigError, match="'label' = 3 is not a class"):
        build("flowar_release", {}, dict(SMALL, label=3))
    with pytest.raises(ConfigError, match="classes"):
        build("flowar_release", {}, dict(SMALL, classes=1001))


def test_png_output_is_the_official_8_bit_image(tmp_path):
    """``--output .png`` decodes (matplotlib's reader) to MAR/FlowAR's saver restated in torch:
    ``round(clip((x + 1)/2 · 255, 0, 255))`` (half to even) of the ``out`` output, RGB; ``batch: 2`` as
    make_grid(nrow=8, padding=0): the images side by side."""
    plt = pytest.importorskip("matplotlib.pyplot")
    from click.testing import CliRunner

    from tc0sim.cli.main import main

    png, npz = tmp_path / "f.png", tmp_path / "f.npz"
    for out in (png, npz):
        result = CliRunner().invoke(main, ["eval", "examples/flowar_release.yaml", "--n", "3", "--output", str(out)])
        assert result.exit_code == 0, result.output
    image = torch.from_numpy(np.load(npz)["out"])
    want = torch.round(((image + 1) / 2 * 255).clamp(0, 255)).to(torch.uint8).numpy()
    got = np.round(plt.imread(png) * 255).astype(np.uint8)
    assert got.shape == (6, 6, 3) and np.array_equal(got, want)
    assert len(np.unique(got)) > 3
    model = tmp_path / "b2.yaml"
    model.write_text(open("examples/flowar_release.yaml", encoding="utf-8").read() + "batch: 2\n", encoding="utf-8")
    png, npz = tmp_path / "b2.png", tmp_path / "b2.npz"
    for out in (png, npz):
        result = CliRunner().invoke(main, ["eval", str(model), "--n", "3", "--output", str(out)])
        assert result.exit_code == 0, result.output
    image = torch.from_numpy(np.load(npz)["out"])
    assert image.shape == (2, 6, 6, 3)
    want = torch.round(((torch.cat(list(image), dim=1) + 1) / 2 * 255).clamp(0, 255)).to(torch.uint8).numpy()
    got = np.round(plt.imread(png) * 255).astype(np.uint8)
    assert got.shape == (6, 12, 3) and np.array_equal(got, want)
