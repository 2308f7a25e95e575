"""The exact GELU and the gated MLP of the released FlowAR (timm's ``SwiGLU`` built with ``nn.GELU``).

* ``gelu(x) = (x·½)·(1 + erf(x·(1/√2)))`` (PyTorch ``nn.GELU()``, approximate="none", in its order of
  operations): the error function
  has no exact identity in the other primitives, so it is the primitive ``erf`` (one d_erf).
* ``glu(x) = fc2(act(fc1_g(x)) · fc1_x(x))``: three biased linears; with act = GELU this is a GEGLU
  (timm calls the module SwiGLU whatever its activation).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ops.constants import SQRT_HALF

REF = "PyTorch nn.GELU (exact) / timm SwiGLU"


def gelu(b: Builder, x: Tensor, name: str = "gelu") -> Tensor:
    """(x·½)·(1 + erf(x·(1/√2))): d_erf + 3 d_std (the halving runs beside the erf)."""
    with b.scope(name, REF):
        erf = b.erf(b.mul(x, b.constant(SQRT_HALF)))
        return b.mul(b.mul(x, b.constant(Fraction(1, 2))), b.add(erf, b.constant(1)))


Project = Callable[[Tensor, str, int], Tensor]
"""``project(x, name, out)``: the biased linear layer ``name`` (its weights named by the caller)."""


def glu(b: Builder, x: Tensor, hidden: int, project: Project, act: Callable[[Builder, Tensor], Tensor] = gelu,
        name: str = "mlp") -> Tensor:
    """fc2(act(fc1_g(x)) · fc1_x(x)) back to the width of x."""
    width = x.shape[-1]
    with b.scope(name, REF):
        gate = act(b, project(x, f"{name}.fc1_g", hidden))
        value = project(x, f"{name}.fc1_x", hidden)
        return project(b.mul(gate, value), f"{name}.fc2", width)
