"""The PyTorch front end: any ``nn.Module`` traced by ``torch.export`` and lowered onto the primitives.

Stages, one per file (docs/torch.md): ``export`` (torch.export, non-strict, decomposed to core
ATen), ``fold`` (subgraphs that read no input and no weight are run by torch into constants),
``aten`` (the lowering table, one entry per ATen op overload, with its rules in ``pointwise``,
``shape`` and ``nn``), ``lower`` (the driver walking the exported graph) and ``kind`` (the model-file
kind ``torch``). PyTorch is imported only when something is traced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tc0sim.ir.graph import Graph


def trace(module: Any, example_inputs: Sequence[Any] | Mapping[str, Any], dims: Mapping[str, Mapping[int, str]] | None = None) -> Graph:
    """The circuit of ``module(*example_inputs)`` (or by argument name), every op lowered onto the primitives.

    ``dims`` names symbolic axes, ``{argument: {axis: dim name}}`` (``torch.export.Dim``): the
    program is exported once for every size of them. Parameters and buffers become weight inputs
    under their state_dict names, the forward arguments inputs under their names; every input
    carries the tensor it was traced with as its default value (``tc0sim eval`` without
    ``--weights`` uses the module's own parameters).
    """
    from tc0sim.frontends.torch.lower import trace as _trace

    return _trace(module, example_inputs, dims)
