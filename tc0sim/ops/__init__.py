"""The operator catalogue of docs/operators.md: every operator kind, listed once in ``OPERATORS``."""

from tc0sim.ir.kind import Kind
from tc0sim.ops import aattc, attention, conv2d, downsample, ffn, flow, flow_matching, layernorm, matmul, mlp, upsample
from tc0sim.ops import activations, linear, norms, resize

OPERATORS: tuple[Kind, ...] = (
    *matmul.KINDS,
    *attention.KINDS,
    *conv2d.KINDS,
    *downsample.KINDS,
    *ffn.KINDS,
    *layernorm.KINDS,
    *mlp.KINDS,
    *upsample.KINDS,
    *flow.KINDS,
    *flow_matching.KINDS,
    *aattc.KINDS,
    *resize.KINDS,
    *activations.KINDS,
    *norms.KINDS,
    *linear.KINDS,
)
"""Every operator kind; ``tc0sim.kinds`` registers them. A new operator module adds one line here."""
