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
