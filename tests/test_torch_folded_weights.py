"""A checkpoint that holds the buffers the torch front end folded (integer index buffers, a −∞ mask),
as an official VAR state_dict does (`lvl_1L`, `attn_bias_for_masking`): bound when the values are
the folded ones, refused (one line, exit 2) when they differ."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from click.testing import CliRunner  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from tc0sim.cli.main import main  # noqa: E402

MODULE = '''
import torch


class Masked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(4, 4)
        self.register_buffer("level", torch.tensor([0, 0, 1, 1]))          # an integer index buffer
        mask = torch.full((4, 4), float("-inf")).triu(1)
        self.register_buffer("mask", mask)                                  # an additive -inf mask
        self.embed = torch.nn.Embedding(2, 4)

    def forward(self, x):
        h = self.proj(x) + self.embed(self.level)
        scores = h @ h.transpose(-1, -2) + self.mask
        return scores.softmax(-1) @ h


def make():
    return Masked().double().eval()
'''


def reference(state: dict, x: np.ndarray) -> np.ndarray:
    """A separately written float64 forward of the module above, from its state_dict."""
    h = x @ state["proj.weight"].T + state["proj.bias"] + state["embed.weight"][state["level"]]
    s = h @ h.T + state["mask"]
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)) @ h


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_folded_buffers_in_a_checkpoint_bind_when_equal_and_refuse_when_not(tmp_path, fmt):
    (tmp_path / "masked.py").write_text(MODULE, encoding="utf-8")
    (tmp_path / "m.yaml").write_text("kind: torch\nmodule: masked.py:make\ninputs: {x: {shape: [4, 4]}}\n"
                                     "precision: 53\n", encoding="utf-8")
    x = np.random.default_rng(1).normal(size=(4, 4))
    np.savez(tmp_path / "in.npz", x=x)
    namespace: dict = {}
    exec(compile(MODULE, "masked", "exec"), namespace)
    state = {k: v.clone() for k, v in namespace["make"]().state_dict().items()}
    with torch.no_grad():
        state["proj.weight"] *= -2  # new weights: the result must follow the checkpoint

    def save(entries, name):
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "pt":
            torch.save(entries, path)
        else:
            save_file({k: v.contiguous() for k, v in entries.items()}, str(path))
        return path

    out = tmp_path / "out.npz"
    args = ["eval", str(tmp_path / "m.yaml"), "--inputs", str(tmp_path / "in.npz"), "--output", str(out)]
    result = CliRunner().invoke(main, args + ["--weights", str(save(state, "good"))])
    assert result.exit_code == 0, result.output
    want = reference({k: v.numpy() for k, v in state.items()}, x)
    np.testing.assert_allclose(np.load(out)["out"], want, rtol=1e-13, atol=1e-13)

    changed = dict(state, level=torch.tensor([1, 0, 1, 1]))
    result = CliRunner().invoke(main, args + ["--weights", str(save(changed, "bad"))])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "level" in lines[0] and "folded" in lines[0] and "mask" not in lines[0]
