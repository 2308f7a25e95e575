"""A Mamba-style block (selective state-space scan) for `kind: torch`.

Plain PyTorch, no tc0sim: input projection, depthwise causal 1-D convolution, SiLU, input-dependent
step sizes (softplus, so the primitive log) and matrices B, C, then the scan
h_t = e^(Δ_t A) ⊙ h_{t−1} + Δ_t B_t x_t, y_t = C_t · h_t, written as a Python loop over the sequence
(unrolled by the trace: the circuit's depth grows with the length), a skip D·x and a gate SiLU(z).
"""

import torch
from torch import nn
from torch.nn import functional as F


class MambaBlock(nn.Module):
    def __init__(self, width: int = 16, state: int = 4, expand: int = 2, conv: int = 3) -> None:
        super().__init__()
        inner = expand * width
        self.rank = max(1, width // 16)
        self.state = state
        self.in_proj = nn.Linear(width, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, conv, groups=inner, padding=conv - 1)
        self.x_proj = nn.Linear(inner, self.rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(self.rank, inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :n].transpose(1, 2))
        dt, B, C = self.x_proj(u).split([self.rank, self.state, self.state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log)
        h = torch.zeros(b, u.shape[-1], self.state, dtype=x.dtype)
        ys = []
        for i in range(n):
            h = torch.exp(dt[:, i, :, None] * A) * h + dt[:, i, :, None] * B[:, i, None, :] * u[:, i, :, None]
            ys.append((h * C[:, i, None, :]).sum(-1))
        y = torch.stack(ys, dim=1) + u * self.D
        return self.out_proj(y * F.silu(z))


def make_model(width: int = 16, state: int = 4, expand: int = 2, conv: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return MambaBlock(width, state, expand, conv).eval()
