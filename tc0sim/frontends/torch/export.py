"""Stage 1: ``torch.export`` (non-strict) of a module, decomposed to core ATen (docs/torch.md).

The decomposition table is torch's default (core ATen) with two changes, both as data:
``KEPT`` ops stay whole because their lowering keeps what the decomposition would lose
(scaled dot-product attention: its mask stays a mask instead of −∞ scores, which F_p does not
have), and ``FORCED`` ops that core ATen keeps are decomposed further, into index arithmetic
(folded at trace time) and gathers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch._decomp import get_decompositions

from tc0sim.errors import ConfigError
from tc0sim.frontends.torch import blocks as rep
from tc0sim.frontends.torch.compat import tracing

aten = torch.ops.aten

KEPT = (aten.scaled_dot_product_attention.default,)
"""Lowered whole (``nn.sdpa``), not decomposed."""

FORCED = (
    aten.upsample_nearest2d.vec,
    aten.upsample_nearest2d.default,
    aten.upsample_bilinear2d.vec,
    aten.upsample_bilinear2d.default,
    aten.upsample_nearest1d.vec,
    aten.upsample_linear1d.vec,
)
"""Core ATen ops decomposed further: their index arithmetic folds, leaving gathers and ⊕/⊗."""


@functools.cache
def _table() -> Any:
    """Made once per process: torch builds it by walking every registered op."""
    table = torch.export.default_decompositions()
    for op in KEPT:
        if op in table:
            del table[op]
    for op, fn in get_decompositions(list(FORCED)).items():
        table[op] = fn
    return table


def decompositions() -> Any:
    """torch's core-ATen table without ``KEPT``, with ``FORCED`` (a copy: run_decompositions may change it)."""
    return _table().copy()


def named_inputs(module: torch.nn.Module, example_inputs: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """The example inputs by the names of ``module.forward``'s parameters."""
    if isinstance(example_inputs, Mapping):
        return dict(example_inputs)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    signature = inspect.signature(module.forward)
    if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values()):
        raise ConfigError(f"{type(module).__name__}.forward takes *args; its arguments are traced by name: "
                          "wrap it in a module whose forward names them")
    try:
        bound = signature.bind(*example_inputs)
    except TypeError as e:
        raise ConfigError(f"the example inputs do not fit {type(module).__name__}.forward: {e}") from None
    return dict(bound.arguments)


def one_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (torch's own words)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@dataclass
class Program:
    """An exported program (core ATen) and, when its repeated blocks were exported once each
    (``blocks.py``), their calls and bodies; ``plain()`` exports the module again without them."""

    program: torch.export.ExportedProgram
    blocks: rep.Blocks | None = None
    module: Any = field(default=None, repr=False)
    inputs: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def plain(self) -> Program:
        return export_program(self.module, self.inputs, repeat=False)


def _exported(module: torch.nn.Module, args: tuple, kwargs: Mapping[str, Any], dynamic: Any = None) -> torch.export.ExportedProgram:
    """``torch.export`` (non-strict, eval mode) decomposed to core ATen; torch's errors as they are."""
    was_training = module.training
    module.eval()
    try:
        with tracing():
            program = torch.export.export(module, args, kwargs=dict(kwargs), dynamic_shapes=dynamic, strict=False)
            return program.run_decompositions(decompositions())
    finally:
        module.train(was_training)


def _repeated(module: torch.nn.Module, inputs: Mapping[str, Any]) -> Program | None:
    """The program with each repeated block exported once (``blocks.py``); None when it does not
    apply. Blocks that differ in an attribute forward reads are tried again without such groups."""
    for soft in (True, False):
        chosen = rep.repeated(module, soft)
        if not chosen:
            return None
        try:
            with rep.opaque(module, chosen) as blocks:
                program = _exported(module, (), inputs)
            if not blocks.calls:
                return None
            rep.export_bodies(blocks, lambda block, args, kwargs: _exported(block, args, kwargs))
        except rep.ReadsDifference:
            continue
        except Exception:  # whatever the reason (NotRepeatable, an export error): the plain way decides
            return None
        return Program(program, blocks, module, inputs)
    return None


def export_program(
    module: torch.nn.Module, inputs: Mapping[str, Any], dims: Mapping[str, Mapping[int, str]] | None = None,
    repeat: bool = True,
) -> Program:
    """``torch.export`` of ``module(**inputs)`` with ``dims`` as ``torch.export.Dim`` axes, in core ATen;
    without ``dims`` and with ``repeat``, repeated blocks are exported once each (``blocks.py``).

    Data-dependent control flow and any other export failure are a ConfigError with torch's
    message on one line."""
    dynamic = None
    if dims:
        made: dict[str, Any] = {}
        dynamic = {
            name: {int(axis): made.setdefault(dim, torch.export.Dim(dim, min=2)) for axis, dim in dims.get(name, {}).items()}
            if isinstance(value, torch.Tensor) else None
            for name, value in inputs.items()
        }
    elif repeat:
        fast = _repeated(module, inputs)
        if fast is not None:
            return fast
    try:
        return Program(_exported(module, (), inputs, dynamic), None, module, inputs)
    except ConfigError:
        raise
    except Exception as e:  # torch raises many types (UserError, GuardOnDataDependentSymNode, ...)
        raise ConfigError(f"torch.export of {type(module).__name__} failed: {type(e).__name__}: {one_line(e)}") from None
