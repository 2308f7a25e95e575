"""Shared helpers of the torch front-end tests: wrap a function as a module, trace, evaluate at p."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from tc0sim.frontends.torch import trace
from tc0sim.interp.evaluate import evaluate


class Fn1(nn.Module):
    def __init__(self, f: Callable[..., Any]) -> None:
        super().__init__()
        self.f = f

    def forward(self, a: torch.Tensor) -> Any:
        return self.f(a)


class Fn2(Fn1):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> Any:
        return self.f(a, b)


class Fn3(Fn1):
    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> Any:
        return self.f(a, b, c)


def wrap(f: Callable[..., Any], arity: int) -> nn.Module:
    return (Fn1, Fn2, Fn3)[arity - 1](f)


def run(module: nn.Module, inputs: list[torch.Tensor], p: int = 53, values: str = "float64") -> tuple[dict, Any]:
    """(outputs of the traced circuit at p given the same inputs, the graph)."""
    graph = trace(module, tuple(inputs))
    names = [n for n in graph.inputs if graph.node(graph.inputs[n]).attrs.get("role") == "input"]
    given = {name: t.detach().numpy() for name, t in zip(names, inputs)}
    return evaluate(graph, p, inputs=given, values=values), graph


def reference(module: nn.Module, inputs: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*inputs)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().to(torch.float64).numpy() for o in out]


def outputs(result: dict) -> list[np.ndarray]:
    return [result["out"]] if "out" in result else [result[f"out{i}"] for i in range(len(result))]
