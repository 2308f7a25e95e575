"""The taming/LDM decoder builder against a separately written float64 PyTorch decoder (reference_var)."""

from __future__ import annotations

import numpy as np
import pytest

from tc0sim.errors import ConfigError
from tc0sim.interp.evaluate import evaluate
from tc0sim.ir.graph import Builder
from tc0sim.models.vae_decoder import DecoderConfig, decoder_parameter_count, ldm_attn_levels, var_decoder_config, vae_decoder

torch = pytest.importorskip("torch")
import reference_var as RV  # noqa: E402


def _evaluate(cfg: DecoderConfig, z: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    b = Builder()
    b.output("out", vae_decoder(b, b.input("z", z.shape), cfg, prefix="vae."))
    out = evaluate(b.graph, 53, {"z": z, **weights})["out"]
    return np.vectorize(float, otypes=[np.float64])(out)


@pytest.mark.parametrize("fused, attn_levels, mid_attn", [(True, {1}, True), (False, set(), True), (True, {0}, False)])
def test_decoder_matches_torch(fused: bool, attn_levels: set, mid_attn: bool) -> None:
    ref = RV.Decoder(4, (1, 2), 1, 3, 2, attn_levels, mid_attn=mid_attn, fused=fused)
    RV.randomize(ref, seed=len(attn_levels) + fused)
    cfg = DecoderConfig(4, (1, 2), 1, 3, 3, frozenset(attn_levels), mid_attn, fused, groups=2)
    z = np.random.default_rng(0).standard_normal((3, 3, 3))
    got = _evaluate(cfg, z, RV.state_arrays(ref, "vae.decoder."))
    want = ref(torch.from_numpy(z).permute(2, 0, 1)[None])[0].permute(1, 2, 0).detach().numpy()
    assert got.shape == (6, 6, 3)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    assert decoder_parameter_count(cfg) == RV.count(ref)


def test_var_decoder_parameter_count_matches_torch_module() -> None:
    """The released VQ-VAE decoder (ch 160, ch_mult 1,1,2,2,4, 3 ResBlocks per level, attention at
    the lowest level and in the middle) plus its 3×3 post_quant_conv 32 → 32."""
    ref = RV.Decoder(160, (1, 1, 2, 2, 4), 2, 32, 32, {4})
    assert decoder_parameter_count(var_decoder_config()) == RV.count(ref) + 32 * 32 * 9 + 32


def test_ldm_attention_levels() -> None:
    assert ldm_attn_levels(256, (1, 1, 2, 2, 4), [16]) == frozenset({4})
    assert ldm_attn_levels(256, (1, 1, 2, 2, 4), []) == frozenset()


def test_decoder_config_rejects_bad_groups() -> None:
    with pytest.raises(ConfigError, match="groups do not divide"):
        DecoderConfig(6, (1, 2), 1, 3, groups=4)
