"""What the lowering rules read and return: graph tensors, folded torch values, masked scores.

A value in the lowering is a graph ``Tensor``, a folded ``torch.Tensor`` or Python number (a
constant of the circuit), a tuple of values (multi-output ops) or ``Masked``: scores some of
whose entries are −∞ (an additive attention mask). F_p has no infinities, so a masked value
carries its finite entries and a 0/1 ``keep`` tensor, and the softmax that reads it multiplies
``e^x`` by ``keep`` (exactly the terms that e^−∞ = 0 removes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.fx import Node

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor


@dataclass(frozen=True)
class Masked:
    """Scores with −∞ where ``keep`` is 0: ``value`` holds the finite entries (0 elsewhere)."""

    value: Tensor
    keep: Tensor


@dataclass(frozen=True)
class Lazy:
    """The outputs of a multi-output op, each built when first read (``getitem``)."""

    parts: tuple[Callable[[], Any], ...]


def to_numpy(value: torch.Tensor) -> np.ndarray:
    """A folded tensor as a float64 or int64 array with the same values (bool → 0/1)."""
    value = value.detach().cpu()
    if value.dtype == torch.bool:
        value = value.to(torch.int64)
    elif value.is_floating_point():
        value = value.to(torch.float64)  # float16, bfloat16, float32 widen exactly
    elif value.is_complex():
        raise GraphError("complex tensors have no F_p value")
    return value.numpy()


class Lowering:
    """The rules' view of the build: the Builder, the FX node being lowered, value conversions."""

    def __init__(self, b: Builder) -> None:
        self.b = b
        self.node: Node | None = None

    def arg_dtype(self, index: int, name: str = "") -> torch.dtype | None:
        """The dtype torch recorded for the node's operand ``index`` (or keyword ``name``; None if
        it is not a tensor)."""
        if self.node is None:
            return None
        arg = self.node.args[index] if index < len(self.node.args) else self.node.kwargs.get(name)
        return getattr(arg.meta.get("val"), "dtype", None) if isinstance(arg, Node) else None

    def out_dtype(self) -> torch.dtype | None:
        val = self.node.meta.get("val") if self.node is not None else None
        return getattr(val, "dtype", None)

    def constant(self, value: Any) -> Tensor:
        """A folded tensor or a number as a circuit constant (exact; −∞ is refused here)."""
        array = to_numpy(value) if isinstance(value, torch.Tensor) else np.asarray(value)
        if array.dtype == bool:
            array = array.astype(np.int64)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise GraphError(
                f"{self.where()}: a constant with value {array[~np.isfinite(array)].reshape(-1)[0]} enters the circuit; "
                "F_p has no infinities or NaN (only −∞ attention-mask scores read by a softmax are supported)"
            )
        return self.b.constant(array)

    def tensor(self, value: Any) -> Tensor:
        """Any value as a graph tensor."""
        if isinstance(value, Tensor):
            return value
        if isinstance(value, Masked):
            raise GraphError(f"{self.where()}: −∞ scores reach an op other than a softmax or an addition")
        return self.constant(value)

    def operands(self, *values: Any) -> list[Tensor]:
        """Values as graph tensors; a number becomes a (1, …, 1) constant of the widest operand's rank."""
        rank = max((getattr(v, "ndim", 0) for v in values), default=0)
        out = []
        for v in values:
            if isinstance(v, (bool, int, float)):
                v = np.full((1,) * rank, v, dtype=np.float64 if isinstance(v, float) else np.int64)
            out.append(self.tensor(v))
        return out

    def where(self) -> str:
        """The op and module being lowered, for messages."""
        if self.node is None:
            return "(trace)"
        stack = self.node.meta.get("nn_module_stack") or {}
        path = module_path(stack)
        return f"{self.node.target}" + (f" in {path}" if path else "")


def module_path(stack: dict[str, Any]) -> str:
    """The innermost module's path (``blocks.3.attn.proj``; '' at the top level)."""
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return "" if not isinstance(path, str) or path.startswith("_empty") else path


def module_type(stack: dict[str, Any]) -> str:
    """The innermost module's class name ('' at the top level)."""
    if not stack:
        return ""
    kind = list(stack.values())[-1][1]
    name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    return name.rsplit(".", 1)[-1]
