"""Stage 2: constant folding — a subgraph that reads no input and no weight is run by torch.

A node is *constant* when every node it reads is constant (literals, integer buffers, lifted
tensor constants, sizes), or when its op reads only the *shapes* of its operands (``SHAPE_ONLY``:
``sym_size``, ``full_like``, ...). Constant nodes are executed by torch at trace time, with the
module's own dtypes, and their values enter the circuit as constants or as static gather
indices (rotary tables, position ids, masks, interpolation indices). Random ops are never folded
(``RANDOM``): their values would be one draw frozen into the circuit.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.fx import Node
from torch.fx.node import map_arg

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Tensor

aten = torch.ops.aten

SHAPE_ONLY: frozenset[Any] = frozenset({
    aten.sym_size.int, aten.sym_numel.default, aten.sym_stride.int, aten.sym_storage_offset.default,
    aten.full_like.default, aten.zeros_like.default, aten.ones_like.default, aten.empty_like.default,
    aten.new_zeros.default, aten.new_ones.default, aten.new_full.default, aten.new_empty.default,
    aten.new_empty_strided.default, aten.empty_strided.default,
})
"""Ops whose result depends only on their operands' shapes and dtypes."""

RANDOM: frozenset[Any] = frozenset({
    aten.rand.default, aten.randn.default, aten.randint.default, aten.randint.low, aten.rand_like.default,
    aten.randn_like.default, aten.randint_like.default, aten.randperm.default, aten.multinomial.default,
    aten.bernoulli.default, aten.bernoulli.p, aten.normal.Tensor_float, aten.normal.float_Tensor,
    aten.normal.Tensor_Tensor, aten.normal.float_float, aten.uniform.default, aten.native_dropout.default,
    aten.exponential.default, aten.geometric.default, aten.poisson.default,
})
"""Random ops: not lowered; their numbers must be inputs of the circuit."""


def folded_buffer(spec: Any, value: torch.Tensor) -> bool:
    """A floating buffer that is structure, not a weight: non-persistent (not in the state_dict, so
    no checkpoint binds it) or holding ±∞/NaN (an additive −∞ attention mask, which F_p cannot
    hold as a weight value). It is folded like an integer buffer."""
    if getattr(spec, "persistent", True) is False:
        return True
    return value.device.type != "meta" and not bool(torch.isfinite(value).all())


def constant_nodes(nodes: Iterable[Node], constant_inputs: set[Node]) -> set[Node]:
    """The nodes whose values torch can compute at trace time (placeholders in ``constant_inputs``)."""
    found = set(constant_inputs)
    for node in nodes:
        if node.op != "call_function" or node.target in RANDOM:
            continue
        if node.target in SHAPE_ONLY or all(arg in found for arg in node.all_input_nodes):
            found.add(node)
    return found


def _shape_stand_in(value: Any, node: Node) -> Any:
    """A graph tensor replaced by an empty torch tensor of its shape (for ``SHAPE_ONLY`` ops)."""
    if isinstance(value, Tensor):
        dtype = getattr(node.meta.get("val"), "dtype", torch.float64)
        return torch.empty(value.shape, dtype=dtype)
    return value


def run(node: Node, value_of: Callable[[Node], Any]) -> Any:
    """Execute a constant node with torch on its operands' folded values."""
    stand_in = (lambda n: _shape_stand_in(value_of(n), n)) if node.target in SHAPE_ONLY else value_of
    args = map_arg(node.args, stand_in)
    kwargs = map_arg(node.kwargs, stand_in)
    if getattr(kwargs.get("device"), "type", None) == "meta":  # a module on the meta device: fold for real
        kwargs = {**kwargs, "device": torch.device("cpu")}
    if node.target is operator.getitem:
        return args[0][args[1]]
    try:
        return node.target(*args, **kwargs)
    except Exception as e:  # torch's own checks (a size assertion of the export at another size, ...)
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ConfigError(f"{node.target} failed while folding constants: {first.strip()}") from None
