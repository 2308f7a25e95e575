"""Helpers every model shares: parameter checks, weights, and the token layout of Remark 3.10."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.dag import WeightSource
from tc0sim.ir.graph import Builder, Graph, Tensor
from tc0sim.ops.linear import linear


def check_positive_int(kind: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``, else a ConfigError naming the param."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{kind}: param {name!r} must be an integer ≥ {minimum}, got {value!r}")
    return value


def weight(b: Builder, name: str, shape: tuple[int, ...]) -> Tensor:
    """A weight input (role 'weight') of the given shape."""
    return b.input(name, shape, role="weight")


class NamedWeights:
    """Weight inputs by their official state_dict names (one input per name) and ``nn.Linear`` layers.

    ``source`` (default: a new weight input of ``b``) makes a weight the first time a name is asked;
    a shared body's weights come from the source ``Builder.call`` gives it."""

    def __init__(self, b: Builder, source: WeightSource | None = None) -> None:
        self.b = b
        self.source = source or (lambda name, shape: b.input(name, shape, role="weight"))
        self.made: dict[str, Tensor] = {}
        self._modules: dict[str, WeightSource] = {}

    def __call__(self, name: str, shape: tuple[int, ...]) -> Tensor:
        if name not in self.made:
            self.made[name] = self.source(name, shape)
        return self.made[name]

    def under(self, prefix: str) -> WeightSource:
        """The weights named ``prefix + name`` (a module's weights, for a shared body; one source per prefix)."""
        found = self._modules.get(prefix)
        if found is None:
            found = self._modules[prefix] = lambda name, shape: self(prefix + name, shape)
        return found

    def linear(self, x: Tensor, name: str, out: int, bias: bool = True) -> Tensor:
        """``name``: Linear(x.shape[-1] → out) with weights ``name.weight`` [out, in] and ``name.bias``."""
        width = x.shape[-1]
        return linear(self.b, x, self(f"{name}.weight", (out, width)), self(f"{name}.bias", (out,)) if bias else None, name=name)


def weight_groups(graph: Graph, component_of: Callable[[str], tuple[str, str]], groups: Sequence[str]) -> dict[str, Any]:
    """The weight scalars of a graph by group and by "group/component" (``component_of(name)``), with the total."""
    totals = dict.fromkeys(groups, 0)
    by_component: dict[str, int] = {}
    for name, nid in graph.inputs.items():
        node = graph.node(nid)
        if node.attrs.get("role") != "weight":
            continue
        group, component = component_of(name)
        totals[group] += node.size
        key = f"{group}/{component}"
        by_component[key] = by_component.get(key, 0) + node.size
    return {**totals, "total": sum(totals.values()), "by_component": dict(sorted(by_component.items()))}


def tokens(b: Builder, maps: Sequence[Tensor]) -> Tensor:
    """Flatten token maps ``[h_i, w_i, c]`` row-major and concatenate them: ``[Σ h_i w_i, c]`` (Remark 3.10)."""
    return b.concat([b.reshape(m, (m.shape[0] * m.shape[1], m.shape[2])) for m in maps], axis=0)


def split_maps(b: Builder, x: Tensor, sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
    """The inverse of ``tokens``: the rows of ``x`` cut into maps of the given sizes."""
    maps, start = [], 0
    for h, w in sizes:
        maps.append(b.reshape(b.slice(x, 0, start, start + h * w), (h, w, x.shape[1])))
        start += h * w
    return maps


@dataclass(frozen=True)
class Official:
    """What the official code does around a released model's circuit (``tc0sim eval``).

    ``seeded(params, seed, p)``: the circuit's random inputs as the official sampler draws them from
    ``torch.Generator().manual_seed(seed)`` (``--torch-seed``; None: not wired); ``image``: the output
    holding the image, and ``to_bytes`` its 8-bit values as the official code saves them (``--output .png``)."""

    seeded: Callable[[Mapping[str, Any], int, int], dict[str, np.ndarray]] | None
    image: str
    to_bytes: Callable[[np.ndarray], np.ndarray]


def label_is_class(p: Mapping[str, Any]) -> str | None:
    """The released kinds' cross-param rule: a ``label`` names one of the ``classes`` (a negative
    label is the null class, None a drawn one, as the official samplers take them)."""
    if p["label"] is not None and p["label"] >= p["classes"]:
        return f"param 'label' = {p['label']} is not a class (0 … {p['classes'] - 1}, negative: the null class)"
    return None
