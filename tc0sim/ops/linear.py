"""Affine layers in PyTorch's weight layout, so circuit weights are checkpoint tensors as stored.

* ``linear(x, W[out, in], b[out])`` (``nn.Linear``): ``y_o = ⊕(x_i · W_oi for all i, and b_o)``,
  one iterated sum with the bias as a term (depth d_std + d_sum), over any leading axes of x.
* ``conv2d_torch(x[h, w, c], W[out, c, kh, kw], b[out])`` (``nn.Conv2d``, stride 1, padding
  ⌊k/2⌋ for odd k): the weight is permuted (wiring) to the layout of ``conv2d``.
"""

from __future__ import annotations

from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind, Param
from tc0sim.ops.conv2d import conv2d

REF = "PyTorch nn.Linear / nn.Conv2d"


def linear(b: Builder, x: Tensor, weight: Tensor, bias: Tensor | None = None, name: str = "linear") -> Tensor:
    """x[..., in] · W[out, in]ᵀ (+ b[out]) → [..., out]: products, then one ⊕ (d_std + d_sum)."""
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:] or (bias is not None and bias.shape != weight.shape[:1]):
        raise GraphError(
            f"{name}: expected x[..., in], W[out, in], b[out]; got x {x.shape}, W {weight.shape}"
            + (f", b {bias.shape}" if bias is not None else "")
        )
    lead, (out, width) = x.shape[:-1], weight.shape
    with b.scope(name, REF):
        products = b.mul(b.reshape(x, lead + (1, width)), weight)
        if bias is not None:
            products = b.concat([products, b.broadcast(b.reshape(bias, (out, 1)), lead + (out, 1))], axis=len(lead) + 1)
        return b.sum(products, axis=len(lead) + 1)


def conv2d_torch(b: Builder, x: Tensor, weight: Tensor, bias: Tensor, name: str = "conv2d") -> Tensor:
    """nn.Conv2d (odd kernel, stride 1, padding k//2) on X[h, w, c] with W[out, c, kh, kw]."""
    if weight.ndim != 4 or weight.shape[2] % 2 == 0 or weight.shape[3] % 2 == 0:
        raise GraphError(f"{name}: expected an odd kernel W[out, in, kh, kw], got {weight.shape}")
    return conv2d(b, x, b.transpose(weight, (0, 2, 3, 1)), bias, name=name)


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    x = b.input("X", (dims["n"], dims["d_in"]))
    weight = b.input("weight", (dims["d_out"], dims["d_in"]), role="weight")
    bias = b.input("bias", (dims["d_out"],), role="weight") if params["bias"] else None
    return {"out": linear(b, x, weight, bias)}


KINDS: tuple[Kind, ...] = (
    Kind(
        "linear",
        ("n", "d_in", "d_out"),
        _build,
        REF,
        params=(Param("bias", "bool", True, "whether the layer adds a bias b"),),
        doc="nn.Linear: y_o = ⊕(x_i·W_oi, b_o), W stored [out, in]",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
