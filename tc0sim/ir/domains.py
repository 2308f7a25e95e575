"""Input domains: what values a circuit input may take, how a missing one is drawn, how a given one is checked.

A model marks an input with a domain (``domain_input``; the name is kept in the input node's
``attrs["domain"]``). The evaluation engines draw a missing input from its domain (``draw``) and
refuse a supplied one outside it (``check``): one table, keyed by domain name. An input without a
domain is ``normal`` (weights and activations drawn as normal(0, 1)·scale, any finite value allowed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Builder, Node, Tensor

Draw = Callable[[np.random.Generator, tuple[int, ...], float], np.ndarray]


def _onehot(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """One-hot rows along the last axis, each class equally likely."""
    picks = rng.integers(0, shape[-1], size=shape[:-1]) if shape and shape[-1] else np.zeros(shape[:-1], dtype=int)
    return (np.arange(shape[-1]) == picks[..., None]).astype(np.float64) if shape else np.ones(())


def _in_unit(a: np.ndarray) -> np.ndarray:
    return (a >= 0) & (a < 1)


def _positive(a: np.ndarray) -> np.ndarray:
    return a > 0


def _bits(a: np.ndarray) -> np.ndarray:
    return (a == 0) | (a == 1)


def _one_per_row(a: np.ndarray) -> str | None:
    """None, or which row lacks exactly one 1."""
    counts = np.sum(a == 1, axis=-1) if a.ndim else np.ones((), dtype=int)
    bad = np.argwhere(np.asarray(counts) != 1)
    if not len(bad):
        return None
    at = tuple(int(i) for i in bad[0])
    return f"{'row ' + str(list(at)) if at else 'it'} has {int(np.asarray(counts)[at])} entries equal to 1"


@dataclass(frozen=True)
class Domain:
    """What an input means: a description, its draw and the element test of a supplied value."""

    says: str
    draw: Draw
    ok: Callable[[np.ndarray], np.ndarray] | None = None
    rows: Callable[[np.ndarray], str | None] | None = None
    """A whole-array test after the element test: what is wrong, or None (one-hot: one 1 per row)."""


DOMAINS: dict[str, Domain] = {
    "normal": Domain("normal(0, 1)·scale", lambda rng, shape, scale: rng.standard_normal(shape) * float(scale)),
    "noise": Domain("standard normal noise", lambda rng, shape, scale: rng.standard_normal(shape)),
    "unit": Domain("a uniform in [0, 1)", lambda rng, shape, scale: rng.random(shape), _in_unit),
    "exponential": Domain("an Exp(1) number q > 0", lambda rng, shape, scale: rng.standard_exponential(shape), _positive),
    "gumbel": Domain("Gumbel noise −log E", lambda rng, shape, scale: rng.gumbel(size=shape)),
    "onehot": Domain("one-hot rows (one 1, the rest 0)", _onehot, _bits, _one_per_row),
}
"""Every input domain, keyed by the name an input node's ``attrs["domain"]`` holds."""
DEFAULT = "normal"


def domain_input(b: Builder, name: str, shape: Sequence[int], domain: str) -> Tensor:
    """A circuit input whose values lie in ``domain`` (a key of ``DOMAINS``)."""
    if domain not in DOMAINS:
        raise ValueError(f"input {name!r}: unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    t = b.input(name, shape)
    b.graph.nodes[t.node].attrs["domain"] = domain
    return t


def domain_of(node: Node) -> Domain:
    """The domain of an input node (``normal`` when it declares none)."""
    return DOMAINS[node.attrs.get("domain", DEFAULT)]


def draw(node: Node, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A value of the input node drawn from its domain (float64)."""
    return domain_of(node).draw(rng, tuple(node.shape), scale)


def check(node: Node, value: Any) -> None:
    """Refuse (ConfigError naming the input) a supplied value outside the input's domain."""
    dom = domain_of(node)
    if dom.ok is None:
        return
    arr = np.asarray(value)
    if arr.dtype.kind not in "biufO":
        return  # shape and type errors are the engine's to report
    good = np.asarray(dom.ok(arr), dtype=bool)
    if not good.all():
        at = tuple(int(i) for i in np.argwhere(~good)[0])
        raise ConfigError(f"input {node.name!r} must hold {dom.says}; element {list(at)} is {arr[at]}")
    wrong = None if dom.rows is None else dom.rows(arr)
    if wrong:
        raise ConfigError(f"input {node.name!r} must hold {dom.says}; {wrong}")


__all__: Sequence[str] = ["Domain", "DOMAINS", "domain_input", "domain_of", "draw", "check"]
