"""Real weights for a circuit: checkpoint tensors bound to the graph's weight inputs by name (``bind_weights``).

A checkpoint is a PyTorch file (``.pt``/``.pth``/``.bin``/``.ckpt``, read with
``torch.load(weights_only=True)``, so no code in it runs; PyTorch is an optional dependency) or a
safetensors file (read here, every entry checked against the file; F64, F32, F16 and BF16, a
bfloat16 converted exactly as the top half of a float32). Only dense, materialised, real floating
tensors are accepted (meta, sparse, quantised and complex ones are refused by name). A file may be
given as ``PREFIX=PATH``: its tensor names then get PREFIX in front (e.g.
``vae.=vae_ch160v4096z32.pth`` for the VQ-VAE of VAR); the argument is split only when it is not
an existing file and PREFIX looks like a state_dict prefix (letters, digits, '_', '.').

Matching is strict: every weight input must be supplied, every tensor must be a weight input or match
one of the kind's ``ignored_weights`` patterns (training buffers, an encoder the inference does not
run), and shapes must agree; all problems are reported in one error.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Graph

SHOWN = 6
"""How many names an error lists per problem before summarising the rest."""


OBJECT_REFUSALS = ("Unsupported global", "Unsupported class")
"""Parts of torch's message when a checkpoint holds objects ``weights_only`` does not load."""


def _torch_load(path: Path) -> Mapping[str, Any]:
    try:
        import torch
    except ImportError:
        raise ConfigError(f"--weights {path}: reading a PyTorch checkpoint needs PyTorch (pip install torch)") from None
    try:
        with warnings.catch_warnings():  # torch warns (on stderr) about sparse and quantised tensors
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; its advice to load unsafely is not ours
        reason = (
            "it holds objects other than tensors and plain containers, and tc0sim never runs code from a checkpoint"
            if any(part in str(e) for part in OBJECT_REFUSALS)
            else "torch cannot read it as a checkpoint (not a zip or pickle file of tensors, or cut short)"
        )
        raise ConfigError(f"--weights {path}: not a readable PyTorch checkpoint: {reason}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"--weights {path}: expected a state_dict (a mapping of names to tensors), got {type(data).__name__}")
    return data


SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2"}
"""The safetensors dtypes read (as little-endian numpy dtypes; bfloat16 as its raw 16 bits)."""

INTEGER_DTYPES = {"I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
"""Integer safetensors dtypes, read only to compare an entry the circuit folded (an index buffer)."""

SAFETENSORS_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
                        "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8, "C128": 16}
"""Bytes per element of every safetensors dtype (to check a tensor's place in the file; only
SAFETENSORS_DTYPES are read as weights)."""

MAX_SAFETENSORS_HEADER = 100 * 2**20
"""Longest JSON header of a safetensors file read (the format's own limit is 100 MB)."""

MAX_RANK = 32
"""Most axes of a checkpoint tensor."""


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 values given as their 16 raw bits: a bfloat16 is the top half of a float32, so
    shifting the bits up gives the same value exactly."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


@dataclass(frozen=True)
class SafeTensor:
    """A tensor of a safetensors file, checked against the file but read only when a weight needs it."""

    path: Path
    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    def read(self) -> np.ndarray:
        """The values (bfloat16 converted exactly to float32); a dtype that is not a real float is refused."""
        if self.dtype not in SAFETENSORS_DTYPES:
            raise ConfigError(f"--weights {self.path}: tensor {self.name!r} has dtype {self.dtype}, expected a real "
                              f"floating point dtype ({', '.join(SAFETENSORS_DTYPES)})")
        array = self._array(SAFETENSORS_DTYPES[self.dtype])
        return bfloat16_to_float32(array) if self.dtype == "BF16" else array

    def values(self) -> np.ndarray | None:
        """The values of a floating or integer tensor (None for other dtypes): for comparing an entry
        the circuit folded, not for binding."""
        if self.dtype in SAFETENSORS_DTYPES:
            return self.read()
        return self._array(INTEGER_DTYPES[self.dtype]) if self.dtype in INTEGER_DTYPES else None

    def _array(self, dtype: str) -> np.ndarray:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(self.nbytes)
        if len(data) != self.nbytes:
            raise ConfigError(f"--weights {self.path}: tensor {self.name!r} is cut short")
        return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(self.shape)


def _safetensors_load(path: Path) -> Mapping[str, Any]:
    """The tensors of a safetensors file: an 8-byte little-endian header length, a JSON header
    {name: {dtype, shape, data_offsets}}, then the data; every entry checked against the file."""
    size = path.stat().st_size

    def bad(reason: str) -> ConfigError:
        return ConfigError(f"--weights {path}: not a readable safetensors file: {reason}")

    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise bad("shorter than its 8-byte header length")
        length = int.from_bytes(head, "little")
        if length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise bad(f"a header of {length:,} bytes does not fit the file")
        try:
            header = json.loads(handle.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise bad("the header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    start, out = 8 + length, {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (isinstance(entry, dict) and entry.get("dtype") in SAFETENSORS_ITEMSIZE
                and isinstance(entry.get("shape"), list) and len(entry["shape"]) <= MAX_RANK
                and all(type(d) is int and d >= 0 for d in entry["shape"])
                and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
                and all(type(o) is int for o in entry["data_offsets"])):
            raise bad(f"tensor {name!r} has no valid dtype, shape (at most {MAX_RANK} axes) and data_offsets")
        dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        if not 0 <= begin <= end <= size - start or end - begin != math.prod(shape) * SAFETENSORS_ITEMSIZE[dtype]:
            raise bad(f"tensor {name!r}: its data_offsets do not match its shape or the file")
        out[name] = SafeTensor(path, name, dtype, shape, start + begin, end - begin)
    return out


def _refused_layout(value: Any) -> str | None:
    """Why a torch tensor is not a dense, materialised, real floating tensor (None if it is)."""
    import torch

    if value.is_meta:
        return "is on the meta device (it has no values)"
    if value.layout != torch.strided:
        return f"has the sparse or non-dense layout {value.layout}"
    if value.is_quantized:
        return f"is quantised ({value.dtype})"
    if value.is_complex():
        return f"is complex ({value.dtype})"
    if not value.is_floating_point():
        return f"has dtype {value.dtype}, expected floating point"
    return None


def _as_float64(path: Path, name: str, value: Any) -> np.ndarray:
    """A tensor (torch or numpy) as a float64 array; float32/float16/bfloat16 convert exactly. Only
    dense, materialised, real floating tensors are accepted."""
    if isinstance(value, SafeTensor):
        value = value.read()
    if hasattr(value, "detach"):
        reason = _refused_layout(value)
        if reason is not None:
            raise ConfigError(f"--weights {path}: tensor {name!r} {reason}; expected a dense real floating tensor")
        import torch

        value = value.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise ConfigError(f"--weights {path}: tensor {name!r} has dtype {array.dtype}, expected floating point")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"--weights {path}: tensor {name!r} has a value that is not finite")
    return array


PREFIX_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
"""What a ``PREFIX=`` of ``--weights`` looks like: a state_dict name prefix such as ``vae.``."""


def parse_weight_arg(arg: str) -> tuple[str, Path]:
    """``PREFIX=PATH`` or ``PATH``: split at the first '=' only when the whole argument is not an
    existing file, PREFIX looks like a state_dict prefix (PREFIX_PATTERN) and is not a file."""
    prefix, sep, rest = arg.partition("=")
    if sep and rest and not Path(arg).exists() and PREFIX_PATTERN.fullmatch(prefix) and not Path(prefix).exists():
        return prefix, Path(rest)
    return "", Path(arg)


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


def _entry_values(value: Any) -> np.ndarray | None:
    """A checkpoint entry's values of any real or integer dtype (None when they cannot be read)."""
    if isinstance(value, SafeTensor):
        return value.values()
    if hasattr(value, "detach"):  # a torch tensor; bfloat16 widened exactly
        value = value.detach().cpu()
        return (value.float() if str(value.dtype) == "torch.bfloat16" else value).numpy()
    return np.asarray(value)


def _same_value(value: Any, folded: Any) -> bool:
    """True when a checkpoint entry holds exactly the values folded at trace time (same shape; NaN
    equal to NaN, ∞ to ∞)."""
    got, want = _entry_values(value), np.asarray(folded)
    if got is None or got.shape != want.shape:
        return False
    if got.dtype.kind in "fc" or want.dtype.kind in "fc":
        return bool(np.array_equal(got.astype(np.float64), want.astype(np.float64), equal_nan=True))
    return bool(np.array_equal(got, want))


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
    extra, misshaped, twice, refolded = [], [], [], []
    for arg in paths:
        prefix, path = parse_weight_arg(str(arg))
        for raw, value in read_checkpoint(path).items():
            name = prefix + str(raw)
            if name in graph.folded:
                if not _same_value(value, graph.folded[name]):
                    refolded.append(name)
                continue
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
    kinds = (("missing", missing), ("not read by the circuit", extra), ("with the wrong shape", misshaped),
             ("given twice", twice),
             ("folded into the circuit at trace time with other values (load the checkpoint into the module "
              "in its factory)", refolded))
    problems = [f"{len(names)} {what}: {_listing(names)}" for what, names in kinds if names]
    if problems:
        raise ConfigError("--weights: the checkpoint(s) do not fit the circuit's weights: " + "; ".join(problems))
    return found
