"""``tc0sim eval … --torch-seed N`` for ``flowar_release``: the flow noise drawn from torch's generator as the
official ``sample_tokens`` draws it (docs/samplers.md, FlowAR), checked against the float64 restatement of the
official loop (tests/reference_flowar_release.py) that draws its own noise after ``torch.manual_seed(N)``."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference_flowar_release import FlowARRef, KLDecoder, sample_seeded  # noqa: E402
from reference_var import randomize  # noqa: E402
from tc0sim.kinds import build  # noqa: E402
from tc0sim.models.flowar_release import official_inputs  # noqa: E402
from tc0sim.ops.torch_rng import flowar_noise  # noqa: E402

SMALL = dict(width=16, blocks=1, heads=2, head_width=16, head_heads=2, head_blocks=1, scales=[1, 2, 4], steps=4,
             classes=3, cfg="3", guidance="0.9", vae_channels=32, vae_mult=[1], vae_res_blocks=0)


def _cli(args: list[str]):
    from click.testing import CliRunner

    from tc0sim.cli.main import main

    return CliRunner().invoke(main, args)


def _normwise(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


@pytest.mark.parametrize("seed, cross", [(0, False), (1, True), (2024, False), (2**40 + 7, True)])
def test_torch_seed_reproduces_the_official_sampling_loop_through_the_cli(tmp_path, seed: int, cross: bool) -> None:
    """A small official-architecture FlowAR and KL decoder with random float64 weights: ``eval --torch-seed s``
    at p = 53 gives every scale's sample, the latent and the image of the official loop run after
    ``torch.manual_seed(s)`` in float64, normwise within a few ulps."""
    ref = FlowARRef(16, 1, 2, 16, 1, cross, scales=(1, 2, 4), channels=16, classes=3, head_heads=2)
    randomize(ref, 100 + seed % 97, scale=0.25)
    ref.flownet.time_embed.exact = True  # correctly rounded time features, as the circuit's (else ~1e-13 off)
    vae = KLDecoder(32, (1,), 0)
    randomize(vae, 200 + seed % 97, scale=0.1)
    with torch.no_grad():
        latent, samples = sample_seeded(ref, 2, seed, steps=4, cfg=3.0, guidance=0.9)
        image = vae(latent)
    torch.save(ref.state_dict(), tmp_path / "flowar.pth")
    torch.save({"model": vae.state_dict()}, tmp_path / "kl16.ckpt")
    model = tmp_path / "m.yaml"
    params = dict(SMALL, cross=cross, label=2)
    model.write_text("kind: flowar_release\nprecision: 53\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in params.items()))
    out = tmp_path / "out.npz"
    result = _cli(["eval", str(model), "--torch-seed", str(seed), "--output", str(out), "--weights", str(tmp_path / "flowar.pth"),
                   "--weights", f"vae.={tmp_path / 'kl16.ckpt'}"])
    assert result.exit_code == 0, result.output
    got = np.load(out)
    for k, s in enumerate((1, 2, 4)):
        want = samples[k].numpy()
        assert _normwise(got[f"sample.{k + 1}"].reshape(s * s, 16), want) < 1e-14, k
    want_latent = latent[0].permute(1, 2, 0).numpy()
    assert _normwise(got["latent"], want_latent) < 1e-14
    want_image = image[0].permute(1, 2, 0).numpy()
    assert _normwise(got["out"], want_image) < 1e-14
    assert np.abs(want_image).max() > 1e-3


def test_torch_seed_with_a_batch_of_two_reproduces_the_official_loop(tmp_path) -> None:
    """``batch: 2`` with labels (2, 0) as rows of ``class_onehot``: ``eval --torch-seed`` at p = 53 gives the
    samples, latents and images of the official loop on a batch of 2B = 4 (noise ``randn([4, s², 16])``)
    run in float64 after ``torch.manual_seed``, normwise within a few ulps, the two images different."""
    ref = FlowARRef(16, 1, 2, 16, 1, True, scales=(1, 2, 4), channels=16, classes=3, head_heads=2)
    randomize(ref, 31, scale=0.25)
    ref.flownet.time_embed.exact = True
    vae = KLDecoder(32, (1,), 0)
    randomize(vae, 32, scale=0.1)
    with torch.no_grad():
        latent, samples = sample_seeded(ref, [2, 0], 77, steps=4, cfg=3.0, guidance=0.9)
        image = vae(latent)
    torch.save(ref.state_dict(), tmp_path / "flowar.pth")
    torch.save({"model": vae.state_dict()}, tmp_path / "kl16.ckpt")
    np.savez(tmp_path / "labels.npz", class_onehot=np.eye(3)[[2, 0]])
    model = tmp_path / "m.yaml"
    params = dict(SMALL, cross=True, batch=2)
    model.write_text("kind: flowar_release\nprecision: 53\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in params.items()))
    out = tmp_path / "out.npz"
    result = _cli(["eval", str(model), "--torch-seed", "77", "--output", str(out), "--weights", str(tmp_path / "flowar.pth"),
                   "--weights", f"vae.={tmp_path / 'kl16.ckpt'}", "--inputs", str(tmp_path / "labels.npz")])
    assert result.exit_code == 0, result.output
    got = np.load(out)
    for k, s in enumerate((1, 2, 4)):
        assert got[f"sample.{k + 1}"].shape == (2, s, s, 16)
        assert _normwise(got[f"sample.{k + 1}"].reshape(2, s * s, 16), samples[k].numpy()) < 1e-14, k
    assert _normwise(got["latent"], latent.permute(0, 2, 3, 1).numpy()) < 1e-14
    want_image = image.permute(0, 2, 3, 1).numpy()
    assert got["out"].shape == (2, 4, 4, 3) and _normwise(got["out"], want_image) < 1e-14
    assert np.abs(want_image[0] - want_image[1]).max() > 1e-3


def test_the_seed_draws_only_the_noise_in_the_official_shapes() -> None:
    """The noise inputs, by name, are the conditional rows of one ``randn([2, s², 16])`` per scale on the
    global generator after ``torch.manual_seed`` (not a ``[1, s², 16]`` draw: the null-class rows advance the
    stream); float64 at p = 53, float32 values at p ≤ 24; the label is never drawn (the official code
    takes it from the caller)."""
    params = dict(SMALL, cross=False, vae=False)
    graph = build("flowar_release", {}, params)
    drawn = official_inputs(params, 5, 53)
    assert set(drawn) == {n for n in graph.inputs if n.startswith("noise.")} and "class_onehot" in graph.inputs
    for dtype, p in ((torch.float64, 53), (torch.float32, 24)):
        drawn = official_inputs(params, 5, p)
        torch.manual_seed(5)
        for k, s in enumerate((1, 2, 4)):
            full = torch.randn([2, s * s, 16], dtype=dtype).numpy().astype(np.float64)
            assert drawn[f"noise.{k + 1}"].shape == graph.node(graph.inputs[f"noise.{k + 1}"]).shape
            assert np.array_equal(drawn[f"noise.{k + 1}"], full[:1])
    gen = torch.Generator().manual_seed(5)
    alone = [torch.randn([1, s * s, 16], generator=gen, dtype=torch.float64).numpy() for s in (1, 2)]
    assert not np.array_equal(official_inputs(params, 5, 53)["noise.2"], alone[1])
    unguided = official_inputs(dict(params, cfg="1"), 5, 53)  # cfg 1: a batch of one per scale
    assert np.array_equal(unguided["noise.2"], alone[1])


def test_flowar_noise_batches_and_odd_channels() -> None:
    """B = 2 conditional rows of ``randn([2B, s², C])``; with C = 3 (blocks of 16 straddle rows) the rows of
    the joint draw differ from a draw of the conditional rows alone."""
    torch.manual_seed(11)
    want = [torch.randn([4, s * s, 3]).numpy() for s in (1, 3)]
    got = flowar_noise(11, 2, (1, 3), channels=3)
    assert [g.shape for g in got] == [(2, 1, 3), (2, 9, 3)]
    assert all(np.array_equal(g, w[:2]) for g, w in zip(got, want))
    gen = torch.Generator().manual_seed(11)
    torch.randn([4, 1, 3], generator=gen)
    alone = torch.randn([2, 9, 3], generator=gen).numpy()
    assert np.array_equal(alone.ravel()[:32], want[1][:2].ravel()[:32]) and not np.array_equal(alone, want[1][:2])


def test_torch_seed_refuses_noise_also_given(tmp_path) -> None:
    given = tmp_path / "n.npz"
    np.savez(given, **{"noise.1": np.zeros((1, 1, 16))})
    result = _cli(["eval", "examples/flowar_release.yaml", "--torch-seed", "1", "--inputs", str(given),
                   "--output", str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "noise.1 given by --inputs are drawn by --torch-seed" in result.output


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-6), ("float64", 1e-13)])
def test_torch_normal_sampler_as_docs_samplers_states(dtype: str, tol: float) -> None:
    """docs/samplers.md (FlowAR, 6): from 16 values on, ``randn`` turns the uniforms ``rand`` draws from the same
    state into Box–Muller pairs (i, i + 8) per block of 16, redraws the last 16 of a size not a multiple of 16
    from fresh uniforms, and consumes the words of ``rand`` of that size; float32 and float64 differ by O(1)."""
    dt = getattr(torch, dtype)
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731

    def box_muller(u: np.ndarray) -> np.ndarray:
        r = np.sqrt(-2 * np.log(1 - u[:8]))
        return np.concatenate([r * np.cos(2 * np.pi * u[8:]), r * np.sin(2 * np.pi * u[8:])])

    normal = torch.randn(36, generator=gen(), dtype=dt).double().numpy()
    uniform = torch.rand(52, generator=gen(), dtype=dt).double().numpy()
    np.testing.assert_allclose(normal[:16], box_muller(uniform[:16]), rtol=0, atol=tol)
    np.testing.assert_allclose(normal[16:20], box_muller(uniform[16:32])[:4], rtol=0, atol=tol)  # the rest overwritten:
    np.testing.assert_allclose(normal[20:], box_muller(uniform[36:52]), rtol=0, atol=tol)  # the tail, redrawn
    a, b = gen(), gen()
    torch.randn(32, generator=a, dtype=dt), torch.rand(32, generator=b, dtype=dt)
    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
    other = torch.float64 if dtype == "float32" else torch.float32
    assert np.abs(torch.randn(16, generator=gen(), dtype=other).double().numpy() - normal[:16]).max() > 0.1
