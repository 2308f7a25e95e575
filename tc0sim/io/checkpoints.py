"""Real weights for a circuit: checkpoint tensors bound to the graph's weight inputs by name (``bind_weights``).

A checkpoint is a PyTorch file (``.pt``/``.pth``/``.bin``/``.ckpt``, read with
``torch.load(weights_only=True)``, so no code in it runs; PyTorch is an optional dependency) or a
safetensors file (read with ``safetensors.numpy``). A file may be given as ``PREFIX=PATH``: its tensor
names then get PREFIX in front (e.g. ``vae.=vae_ch160v4096z32.pth`` for the VQ-VAE of VAR).

Matching is strict: every weight input must be supplied, every tensor must be a weight input or match
one of the kind's ``ignored_weights`` patterns (training buffers, an encoder the inference does not
run), and shapes must agree; all problems are reported in one error.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Graph

SHOWN = 6
"""How many names an error lists per problem before summarising the rest."""


def _torch_load(path: Path) -> Mapping[str, Any]:
    try:
        import torch
    except ImportError:
        raise ConfigError(f"--weights {path}: reading a PyTorch checkpoint needs PyTorch (pip install torch)") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise ConfigError(f"--weights {path}: not a readable PyTorch checkpoint ({' '.join(str(e).split())[:200]})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"--weights {path}: expected a state_dict (a mapping of names to tensors), got {type(data).__name__}")
    return data


def _safetensors_load(path: Path) -> Mapping[str, Any]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ConfigError(f"--weights {path}: reading safetensors needs the safetensors package (pip install safetensors)") from None
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise ConfigError(f"--weights {path}: not a readable safetensors file ({' '.join(str(e).split())[:200]})") from None


def _as_float64(path: Path, name: str, value: Any) -> np.ndarray:
    """A tensor (torch or numpy) as a float64 array; float32/float16/bfloat16 convert exactly."""
    if hasattr(value, "detach"):
        if not value.is_floating_point():
            raise ConfigError(f"--weights {path}: tensor {name!r} has dtype {value.dtype}, expected floating point")
        import torch

        value = value.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise ConfigError(f"--weights {path}: tensor {name!r} has dtype {array.dtype}, expected floating point")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"--weights {path}: tensor {name!r} has a value that is not finite")
    return array


def parse_weight_arg(arg: str) -> tuple[str, Path]:
    """``PREFIX=PATH`` or ``PATH``."""
    prefix, sep, rest = arg.partition("=")
    return (prefix, Path(rest)) if sep and rest else ("", Path(arg))


NESTED_KEYS = ("state_dict", "model")
"""A checkpoint without tensors at the top but a mapping under one of these keys (e.g. the KL-16
autoencoder's ``{"model": state_dict}``) is read from that mapping."""


def read_checkpoint(path: Path) -> Mapping[str, Any]:
    """The state_dict of a PyTorch or safetensors checkpoint (nested under a NESTED_KEYS key or not)."""
    if not path.is_file():
        raise ConfigError(f"--weights {path}: no such file")
    data = _safetensors_load(path) if path.suffix.lower() == ".safetensors" else _torch_load(path)
    if not any(hasattr(v, "shape") for v in data.values()):
        nested = next((data[k] for k in NESTED_KEYS if isinstance(data.get(k), Mapping)), None)
        if nested is not None:
            return nested
    return data


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def bind_weights(
    graph: Graph, paths: Iterable[str | Path], ignored: Sequence[str] = (), supplied: Iterable[str] = ()
) -> dict[str, np.ndarray]:
    """The weight arrays of the checkpoints ``paths`` (``[PREFIX=]PATH`` each) for ``graph``, by input
    name; one ConfigError for all problems. ``ignored`` are the kind's patterns of tensors the circuit
    does not read (``Kind.ignored_weights``); ``supplied`` names weights given elsewhere (e.g. an
    --inputs file), which need not be in a checkpoint."""
    wanted = {name: graph.node(nid).shape for name, nid in graph.inputs.items() if graph.node(nid).attrs.get("role") == "weight"}
    found: dict[str, np.ndarray] = {}
    sources: dict[str, Path] = {}
    extra, misshaped, twice = [], [], []
    for arg in paths:
        prefix, path = parse_weight_arg(str(arg))
        for raw, value in read_checkpoint(path).items():
            name = prefix + str(raw)
            if name not in wanted:
                if not any(fnmatch.fnmatchcase(name, pattern) for pattern in ignored):
                    extra.append(name)
                continue
            if name in sources:
                twice.append(name)
                continue
            shape = tuple(int(d) for d in getattr(value, "shape", ()))
            if shape != wanted[name]:
                misshaped.append(f"{name} {list(shape)} (expected {list(wanted[name])})")
                continue
            found[name], sources[name] = _as_float64(path, name, value), path
    missing = [n for n in wanted if n not in found and n not in set(supplied)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_listing(missing)}")
    if extra:
        problems.append(f"{len(extra)} not read by the circuit: {_listing(extra)}")
    if misshaped:
        problems.append(f"{len(misshaped)} with the wrong shape: {_listing(misshaped)}")
    if twice:
        problems.append(f"{len(twice)} given twice: {_listing(twice)}")
    if problems:
        raise ConfigError("--weights: the checkpoint(s) do not fit the circuit's weights: " + "; ".join(problems))
    return found
