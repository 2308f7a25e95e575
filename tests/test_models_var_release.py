"""var_release: VAR as released, against a separately written float64 PyTorch implementation
(tests/reference_var.py) and against parameter counts derived by hand from the architecture."""

from __future__ import annotations

import numpy as np
import pytest

from tc0sim.errors import ConfigError
from tc0sim.interp.evaluate import evaluate
from tc0sim.kinds import build
from tc0sim.models.var_release import RELEASED_SCALES, parameters, phi_names, parse_config

SMALL = dict(depth=2, width=64, heads=2, scales=[1, 2, 4], codebook=16, vae_channels=8, classes=10, decoder_ch=16,
             decoder_levels=[1, 2], decoder_res_blocks=1, decoder_groups=4, top_k=5, top_p=0.9, cfg=1.5)


def hand_count(depth: int, scales: tuple, shared: bool, vocab: int = 4096, cvae: int = 32, classes: int = 1000) -> int:
    """The transformer's parameters, term by term from the architecture (width 64·depth, depth heads, MLP 4×)."""
    c, heads, L, K = 64 * depth, depth, sum(pn * pn for pn in scales), len(scales)
    attention = 3 * c * c + 2 * c + heads + c * c + c  # mat_qkv (no bias), q/v biases, scale_mul, proj
    ffn = (c * 4 * c + 4 * c) + (4 * c * c + c)
    adaln = 6 * c if shared else 6 * c * c + 6 * c  # ada_gss table, or SiLU + Linear(C, 6C)
    embeddings = (classes + 1) * c + c + L * c + K * c + (cvae * c + c)  # class, pos_start, pos_1LC, lvl, word_embed
    head = (2 * c * c + 2 * c) + (c * vocab + vocab)
    return embeddings + depth * (attention + ffn + adaln) + head + (6 * c * c + 6 * c if shared else 0)


@pytest.mark.parametrize("depth, resolution", [(16, 256), (20, 256), (24, 256), (30, 256), (36, 512), (16, 1024), (30, 512)])
def test_transformer_parameters_equal_the_official_module(depth: int, resolution: int) -> None:
    counts = parameters(build("var_release", {}, {"depth": depth, "resolution": resolution}))
    assert counts["transformer"] == hand_count(depth, RELEASED_SCALES[resolution], shared=depth == 36)
    assert counts["total"] == counts["transformer"] + counts["vae_decoder"] + counts["quantiser"]
    assert counts["quantiser"] == 4096 * 32 + 4 * (32 * 32 * 9 + 32)
    assert sum(counts["by_component"].values()) == counts["total"]


def test_published_parameter_counts() -> None:
    """The README's figures 310M, 600M, 1.0B, 2.0B, 2.3B are the exact counts cut after their last digit
    (d36 has 2.354B: truncated, not rounded)."""
    published = {16: (310e6, 1e6), 20: (600e6, 1e6), 24: (1.0e9, 1e8), 30: (2.0e9, 1e8), 36: (2.3e9, 1e8)}
    for depth, (figure, digit) in published.items():
        res = 512 if depth == 36 else 256
        n = parameters(build("var_release", {}, {"depth": depth, "resolution": res}))["transformer"]
        assert figure <= n < figure + digit, (depth, n)


@pytest.mark.parametrize("shared", [False, True])
def test_hand_count_matches_a_torch_module(shared: bool) -> None:
    """The hand formula itself, checked on the torch reference at depth 2 (the formula scales with depth)."""
    torch = pytest.importorskip("torch")
    import reference_var as RV

    scales = (1, 2, 3)
    ref = RV.VAR(2, 128, 2, 512, scales, 4096, 32, 1000, shared=shared)
    assert sum(p.numel() for p in ref.parameters()) == hand_count(2, scales, shared)
    got = parameters(build("var_release", {}, {"depth": 2, "scales": list(scales), "shared_aln": shared}))
    assert got["transformer"] == hand_count(2, scales, shared)
    del torch


def test_phi_table_of_the_released_scales() -> None:
    picks = [int(n.rsplit(".", 1)[1]) for n in phi_names(parse_config({}))]
    assert picks == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    picks = [int(n.rsplit(".", 1)[1]) for n in phi_names(parse_config({"resolution": 1024}))]
    assert picks == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"resolution": 300}, "resolution"),
        ({"scales": [2, 1]}, "strictly increasing"),
        ({"width": 100, "heads": 3}, "do not divide"),
        ({"top_p": 1.5}, "top_p"),
        ({"decoder_groups": 7}, "groups do not divide"),
        ({"depth": 0}, "depth"),
    ],
)
def test_bad_params_are_config_errors(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build("var_release", {}, params)


def _small_reference(seed: int, shared: bool = False):
    torch = pytest.importorskip("torch")
    import reference_var as RV

    var = RV.VAR(2, 64, 2, 256, (1, 2, 4), 16, 8, 10, shared=shared)
    vae = RV.VQVAE(16, 8, 16, (1, 2), 1, 4, 4, 3)
    RV.randomize(var, seed, scale=0.1)
    RV.randomize(vae, seed + 1)
    rng = np.random.default_rng(seed)
    uniform = rng.random(21)
    return torch, RV, var, vae, uniform


@pytest.mark.parametrize("seed, shared", [(0, False), (1, True)])
def test_small_instance_matches_float64_torch(seed: int, shared: bool) -> None:
    torch, RV, var, vae, uniform = _small_reference(seed, shared)
    label = 3
    want = RV.infer(var, vae, label, torch.from_numpy(uniform), SMALL["cfg"], SMALL["top_k"], SMALL["top_p"])
    graph = build("var_release", {}, {**SMALL, "shared_aln": shared, "sampler": "inverse_cdf"})
    weights = {**RV.state_arrays(var), **RV.state_arrays(vae, "vae.")}
    inputs = {k: v for k, v in weights.items() if k in graph.inputs}
    inputs["class_onehot"] = np.eye(10)[label]
    inputs["uniform"] = uniform
    assert set(inputs) == set(graph.inputs)
    got = {k: np.vectorize(float, otypes=[np.float64])(v) for k, v in evaluate(graph, 53, inputs).items()}
    assert got["indices"].tolist() == want["indices"].tolist()
    assert len(set(want["indices"].tolist())) > 2  # the sampler really varies
    np.testing.assert_allclose(got["f_hat"], want["f_hat"], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(got["image"], want["image"], rtol=1e-10, atol=1e-10)
    assert got["image"].shape == (8, 8, 3)


def _write_checkpoints(tmp_path, var, vae, torch):
    var_file, vae_file = tmp_path / "var.pth", tmp_path / "vae.pth"
    torch.save(var.state_dict(), var_file)
    torch.save(vae.state_dict(), vae_file)
    return var_file, vae_file


def _cli(args: list[str]):
    from click.testing import CliRunner

    from tc0sim.cli.main import main

    return CliRunner().invoke(main, args)


def test_eval_with_the_reference_state_dicts(tmp_path) -> None:
    """The torch reference's own state_dicts (with the official buffers and unused VQ-VAE tensors)
    through ``tc0sim eval --weights``: the image agrees with the reference's forward pass."""
    torch, RV, var, vae, uniform = _small_reference(4)
    want = RV.infer(var, vae, 7, torch.from_numpy(uniform), SMALL["cfg"], SMALL["top_k"], SMALL["top_p"])
    var_file, vae_file = _write_checkpoints(tmp_path, var, vae, torch)
    inputs = tmp_path / "in.npz"
    np.savez(inputs, class_onehot=np.eye(10)[7], uniform=uniform)
    out = tmp_path / "out.npz"
    model = tmp_path / "var_small_inverse_cdf.yaml"
    model.write_text(open("examples/var_small.yaml", encoding="utf-8").read() + "sampler: inverse_cdf\n", encoding="utf-8")
    result = _cli(["eval", str(model), "--workers", "0", "--weights", str(var_file), "--weights", f"vae.={vae_file}",
                   "--inputs", str(inputs), "--output", str(out)])
    assert result.exit_code == 0, result.output
    got = np.load(out)
    assert got["indices"].tolist() == want["indices"].tolist()
    np.testing.assert_allclose(got["image"], want["image"], rtol=1e-10, atol=1e-10)


def test_safetensors_weights_and_clear_errors(tmp_path) -> None:
    torch, RV, var, vae, uniform = _small_reference(5)
    from safetensors.numpy import save_file

    var_file, vae_file = _write_checkpoints(tmp_path, var, vae, torch)
    arrays = {k: v.detach().numpy().astype(np.float64) for k, v in var.state_dict().items() if v.is_floating_point()}
    st_file = tmp_path / "var.safetensors"
    save_file(arrays, str(st_file))
    out = str(tmp_path / "o.npz")
    base = ["eval", "examples/var_small.yaml", "--workers", "0", "--output", out]
    ok = _cli(base + ["--weights", str(st_file), "--weights", f"vae.={vae_file}"])
    assert ok.exit_code == 0, ok.output
    missing = _cli(base + ["--weights", str(var_file)])
    assert missing.exit_code == 2 and "87 missing: vae.quantize.embedding.weight" in missing.output
    assert "Traceback" not in missing.output
    arrays["head.weight"] = arrays["head.weight"][:, :3]
    arrays["blocks.0.attn.extra_thing"] = np.zeros(2)
    save_file(arrays, str(st_file))
    bad = _cli(base + ["--weights", str(st_file), "--weights", f"vae.={vae_file}"])
    assert bad.exit_code == 2
    assert "head.weight [16, 3] (expected [16, 64])" in bad.output and "blocks.0.attn.extra_thing" in bad.output
    nofile = _cli(base + ["--weights", str(tmp_path / "nope.pth")])
    assert nofile.exit_code == 2 and "no such file" in nofile.output


def test_size_report_gives_parameters() -> None:
    from tc0sim.reports import size_report

    data = size_report("examples/var_d16.yaml").as_dict()
    assert data["parameters"]["transformer"] == hand_count(16, RELEASED_SCALES[256], shared=False)
    assert set(data["parameters"]) == {"transformer", "vae_decoder", "quantiser", "total", "by_component"}


def test_depth_plot_of_the_small_example(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    import json

    from tc0sim.cli.plots import path_by_operator
    from tc0sim.interp.depth import depth
    from tc0sim.interp.paths import group_path
    from tc0sim.ir.primitives import SYMBOLS
    from tc0sim.modelfile import load_model

    out = tmp_path / "path.png"
    result = _cli(["depth", "examples/var_small.yaml", "--plot", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    at = json.loads(result.stdout)["depth"]
    result = depth(load_model("examples/var_small.yaml").build())
    number, path = result.at({s: 1 for s in SYMBOLS})
    bars = path_by_operator(group_path(path))
    assert sum(sum(row.values()) for row in bars.values()) == number  # every gate of the path is in one bar
    assert {"attention", "softmax", "gelu_tanh", "group_norm", "top_p"} <= set(bars)
    assert at["exact"]


@pytest.mark.parametrize("params", [{}, {"depth": 3, "scales": [1, 2, 3], "shared_aln": True}], ids=["small", "shared_aln"])
def test_blocks_as_shared_bodies_give_the_inlined_circuit(params):
    """Built with shared blocks (what depth and size read), the circuit has the depth, size, witness
    scopes and values of the plain build."""
    from tc0sim.interp.depth import depth
    from tc0sim.interp.paths import group_path
    from tc0sim.interp.size import size
    from tc0sim.modelfile import load_model

    spec = load_model("examples/var_small.yaml")
    overrides = {**spec.params_at(None), **params}
    plain = build("var_release", {}, overrides)
    shared = build("var_release", {}, overrides, share=True)
    assert shared.has_calls and len(shared.nodes) < len(plain.nodes)
    result = depth(shared)
    assert result.critical == depth(plain).critical
    assert size(shared).as_dict() == size(plain).as_dict()
    assert parameters(shared) == parameters(plain)
    crit = result.critical[-1]
    assert [g.operator for g in result.witness_groups(crit)] == [g.operator for g in group_path(result.witness(crit))]
    assert "var_release/scale2/adaln_block/attention/softmax" in {g.operator for g in result.witness_groups(crit)}
    a, b = evaluate(plain, 24, seed=5, scale=0.05, values="float64"), evaluate(shared, 24, seed=5, scale=0.05, values="float64")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# the official sampler with torch's own random stream (issue 30)

OFFICIAL_ARCH = dict(depth=2, width=64, heads=2, codebook=16, vae_channels=8, classes=10, decoder_ch=16,
                     decoder_levels=[1, 2], decoder_res_blocks=1, decoder_groups=4, top_k=5, top_p=0.9, cfg=1.5)


def _official_pair(seed: int, scales=(1, 2, 4), l2_norm: bool = True, quant_resi: float = 0.5):
    """A small official-architecture VAR and VQ-VAE with random float64 weights, and their arrays by name."""
    torch = pytest.importorskip("torch")
    import reference_var as RV

    var = RV.VAR(2, 64, 2, 256, tuple(scales), 16, 8, 10, l2_norm=l2_norm)
    vae = RV.VQVAE(16, 8, 16, (1, 2), 1, 4, 4, len(scales), quant_resi=quant_resi)
    RV.randomize(var, seed, scale=0.1)
    RV.randomize(vae, seed + 1)
    return torch, RV, var, vae, {**RV.state_arrays(var), **RV.state_arrays(vae, "vae.")}


def _seeded_eval(params: dict, arrays: dict, g_seed: int) -> dict:
    from tc0sim.models.var_release import official_inputs

    graph = build("var_release", {}, params)
    inputs = {k: v for k, v in arrays.items() if k in graph.inputs}
    inputs.update(official_inputs(params, g_seed, 53))
    assert set(inputs) == set(graph.inputs)
    return {k: np.vectorize(float, otypes=[np.float64])(v) for k, v in evaluate(graph, 53, inputs).items()}


@pytest.mark.parametrize("g_seed", [0, 1, 2024])
def test_torch_seed_reproduces_the_official_loop_through_the_cli(tmp_path, g_seed: int) -> None:
    """tc0sim eval examples/var_small.yaml --torch-seed s at p = 53: the tokens (and the drawn class) of the
    official autoregressive_infer_cfg(B=1, label_B=None, g_seed=s) run in float64 on the same weights."""
    torch, RV, var, vae, _ = _official_pair(10 + g_seed)
    want = RV.infer_official(var, vae, 1, None, g_seed, 1.5, 5, 0.9)
    var_file, vae_file = _write_checkpoints(tmp_path, var, vae, torch)
    out = tmp_path / "out.npz"
    result = _cli(["eval", "examples/var_small.yaml", "--workers", "0", "--precision", "53", "--torch-seed", str(g_seed),
                   "--weights", str(var_file), "--weights", f"vae.={vae_file}", "--output", str(out), "--probe", "scale*/head"])
    assert result.exit_code == 0, result.output
    got = np.load(out)
    assert got["indices"].tolist() == want["indices"][0].tolist()
    assert len(set(want["indices"][0].tolist())) > 2  # the sampler really varies
    np.testing.assert_allclose(got["image"], want["image"][0], rtol=1e-10, atol=1e-10)
    for si, logits in enumerate(want["logits"]):  # --probe 'scale*/head': each scale's logits, both CFG halves
        np.testing.assert_allclose(got[f"var_release/scale{si + 1}/head"], logits, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "extra, label, arch",
    [
        ({"batch": 2}, None, {}),
        ({"batch": 3, "label": 4}, 4, {}),
        ({"label": -1}, -1, {}),
        ({"more_smooth": True, "label": 2}, 2, {}),
        ({"scales": [2, 3, 4], "label": 1}, 1, {"scales": (2, 3, 4)}),
        ({"attn_l2_norm": False, "label": 5}, 5, {"l2_norm": False}),
        ({"quant_resi": 0.0, "label": 6}, 6, {"quant_resi": 0.0}),
        ({"quant_resi": -0.25, "label": 6, "top_k": 16, "top_p": 0.0}, 6, {"quant_resi": -0.25}),
    ],
    ids=["batch2_random_labels", "batch3_label", "unconditional", "more_smooth", "first_scale_2", "no_l2_norm",
         "identity_phi", "negative_resi_no_masks"],
)
def test_official_options_match_the_official_loop(extra: dict, label, arch: dict) -> None:
    """Each official option against the float64 restatement of the official loop, same seed, p = 53."""
    params = {**OFFICIAL_ARCH, "scales": [1, 2, 4], **extra}
    torch, RV, var, vae, arrays = _official_pair(3, **arch)
    want = RV.infer_official(var, vae, params.get("batch", 1), label, 5, 1.5, params["top_k"], params["top_p"],
                             more_smooth=params.get("more_smooth", False))
    got = _seeded_eval(params, arrays, 5)
    batch = params.get("batch", 1)
    squeeze = (lambda a: a[0]) if batch == 1 else (lambda a: a)
    assert got["indices"].tolist() == squeeze(want["indices"]).tolist()
    np.testing.assert_allclose(got["f_hat"], squeeze(want["f_hat"]), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got["image"], squeeze(want["image"]), rtol=1e-10, atol=1e-10)
    if batch > 1:
        assert len({tuple(r) for r in want["indices"].tolist()}) > 1  # the images differ


def test_official_option_weights_follow_the_official_modules() -> None:
    torch, RV, var, vae, arrays = _official_pair(0, l2_norm=False, quant_resi=0.0)
    graph = build("var_release", {}, {**OFFICIAL_ARCH, "scales": [1, 2, 4], "attn_l2_norm": False, "quant_resi": 0.0})
    weights = {k for k in graph.inputs if graph.node(graph.inputs[k]).attrs.get("role") == "weight"}
    official = {k for k, v in arrays.items() if "ema_vocab" not in k and not k.startswith("vae.quant_conv.") and not k.startswith("vae.encoder")}
    official -= {"lvl_1L", "attn_bias_for_masking"} | {k for k in official if k.endswith("zero_k_bias")}
    assert weights == official
    assert not any("scale_mul_1H11" in k or "quant_resi" in k for k in weights)
    del torch


@pytest.mark.parametrize(
    "params, message",
    [
        ({"top_k": 17}, "exceeds the codebook size 16"),
        ({"label": 10}, "is not a class"),
        ({"sampler": "inverse_cdf", "more_smooth": True}, "needs sampler: official"),
        ({"sampler": "gibbs"}, "sampler"),
    ],
)
def test_official_option_errors(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build("var_release", {}, {**OFFICIAL_ARCH, "scales": [1, 2, 4], **params})


def test_inputs_outside_their_domain_are_one_error_line(tmp_path) -> None:
    rng = np.random.default_rng(0)
    base = ["eval", "examples/var_small.yaml", "--workers", "0", "--output", str(tmp_path / "o.npz"), "--inputs"]
    cases = [
        ({"class_onehot": np.eye(10)[2] * 0.5}, "input 'class_onehot' must hold one-hot rows"),
        ({"class_onehot": np.eye(10)[2] + np.eye(10)[3]}, "input 'class_onehot' must hold one-hot rows"),
        ({"exponentials": -rng.random((21, 16))}, "input 'exponentials' must hold an Exp(1) number q > 0"),
    ]
    for arrays, message in cases:
        path = tmp_path / "in.npz"
        np.savez(path, **arrays)
        result = _cli(base + [str(path)])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    graph = build("var_release", {}, {**OFFICIAL_ARCH, "scales": [1, 2, 4], "sampler": "inverse_cdf", "label": 0})
    with pytest.raises(ConfigError, match=r"input 'uniform' must hold a uniform in \[0, 1\); element \[3\] is 1.0"):
        evaluate(graph, 24, {"uniform": np.where(np.arange(21) == 3, 1.0, 0.5)}, scale=0.1)


def test_missing_inputs_are_drawn_from_their_domains() -> None:
    from tc0sim.interp.evaluate import random_inputs

    graph = build("var_release", {}, {**OFFICIAL_ARCH, "scales": [1, 2, 4], "batch": 3})
    drawn = random_inputs(graph, seed=1, scale=5.0)
    onehot, q = drawn["class_onehot"], drawn["exponentials"]
    assert onehot.shape == (3, 10) and set(onehot.ravel().tolist()) == {0.0, 1.0} and onehot.sum(axis=1).tolist() == [1, 1, 1]
    assert q.shape == (63, 16) and q.min() > 0 and abs(q.mean() - 1) < 0.2  # Exp(1), not scaled by 5
    graph = build("var_release", {}, {**OFFICIAL_ARCH, "scales": [1, 2, 4], "sampler": "inverse_cdf"})
    u = random_inputs(graph, seed=1, scale=5.0)["uniform"]
    assert u.min() >= 0 and u.max() < 1


def test_torch_seed_and_png_output_errors(tmp_path) -> None:
    out = str(tmp_path / "o.json")
    result = _cli(["eval", "examples/matmul.yaml", "--torch-seed", "1", "--output", out])
    assert result.exit_code == 2 and "--torch-seed: kind 'matmul' is not a released model" in result.output
    result = _cli(["eval", "examples/matmul.yaml", "--output", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "--output .png: kind 'matmul' is not a released model" in result.output
    model = tmp_path / "icdf.yaml"
    model.write_text(open("examples/var_small.yaml", encoding="utf-8").read() + "sampler: inverse_cdf\n", encoding="utf-8")
    result = _cli(["eval", str(model), "--torch-seed", "1", "--output", out])
    assert result.exit_code == 2 and "sampler: inverse_cdf" in result.output and "Traceback" not in result.output
    given = tmp_path / "q.npz"
    np.savez(given, exponentials=np.ones((21, 16)))
    result = _cli(["eval", "examples/var_small.yaml", "--torch-seed", "1", "--inputs", str(given), "--output", out])
    assert result.exit_code == 2 and "exponentials given by --inputs are drawn by --torch-seed" in result.output
    result = _cli(["eval", "examples/var_small.yaml", "--probe", "scale*/head", "--output", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "--probe writes to a .json or .npz output" in result.output


def test_png_output_is_the_official_8_bit_image(tmp_path) -> None:
    """The PNG decodes (matplotlib's reader, an independent decoder) to torchvision's save_image bytes of
    the image output, restated in torch: ``mul(255).add_(0.5).clamp_(0, 255)`` to uint8; a batch of 3 as
    make_grid(nrow=8, padding=0): the images side by side."""
    plt = pytest.importorskip("matplotlib.pyplot")
    torch = pytest.importorskip("torch")
    for batch in (1, 3):
        model = tmp_path / f"b{batch}.yaml"
        model.write_text(open("examples/var_small.yaml", encoding="utf-8").read() + f"batch: {batch}\n", encoding="utf-8")
        png, npz = tmp_path / f"b{batch}.png", tmp_path / f"b{batch}.npz"
        for out in (png, npz):
            result = _cli(["eval", str(model), "--precision", "24", "--output", str(out)])
            assert result.exit_code == 0, result.output
        image = torch.from_numpy(np.load(npz)["image"]).reshape(batch, 8, 8, 3)
        want = torch.cat(list(image), dim=1).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).numpy()
        got = np.round(plt.imread(png) * 255).astype(np.uint8)
        assert got.shape == (8, 8 * batch, 3)
        assert np.array_equal(got, want)
        assert len(np.unique(got)) > 10
