"""Validating a parsed model file key by key: the kind, then the top-level keys (precision, seed,
scale, n, sweep, description, claim), then the kind's dims and params (``tc0sim.modelfile.schema``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.expr import LIMIT
from tc0sim.ir.vectors import Vec, as_vec
from tc0sim.kinds import get_kind, kind_names
from tc0sim.limits import MAX_PRECISION, MAX_SEED, MAX_SWEEP_POINTS, MIN_PRECISION
from tc0sim.modelfile.messages import is_int, short, type_name
from tc0sim.modelfile.schema import read_dims, read_params
from tc0sim.modelfile.spec import DEFAULT_SCALE, DEFAULT_SEED, TOP_LEVEL_KEYS, ModelSpec

def from_mapping(data: Any, source: str = "<model>") -> ModelSpec:
    """Validate an already-parsed model-file document."""
    if data is None:
        raise ConfigError(f"{source}: empty model file; expected a mapping with at least 'kind' and 'dims'")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys (kind, dims, ...) at the top level, got {type_name(data)}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"{source}: top-level key {short(bad_keys[0])} is not a string")

    if "kind" not in data:
        raise ConfigError(f"{source}: missing key 'kind'; expected one of {_kind_names()}")
    kind_name = data["kind"]
    if not isinstance(kind_name, str):
        raise ConfigError(f"{source}: key 'kind': expected a string naming a kind, got {type_name(kind_name)}")
    try:
        kind = get_kind(kind_name)
    except ConfigError:
        raise ConfigError(f"{source}: key 'kind': unknown kind {short(kind_name)}; expected one of {_kind_names()}") from None

    names = kind.defaults
    unknown = [k for k in data if k not in TOP_LEVEL_KEYS and k not in names]
    if unknown:
        allowed = list(TOP_LEVEL_KEYS) + [p for p in names if p not in TOP_LEVEL_KEYS]
        raise ConfigError(f"{source}: unknown key {short(unknown[0])}; expected one of {', '.join(allowed)}")

    spec = ModelSpec(kind=kind.name, dims={}, source=source)
    if "precision" in data:
        spec.precision = _int_key(
            data, "precision", source, MIN_PRECISION, MAX_PRECISION, f"beyond the supported {MAX_PRECISION:,} bits"
        )
    spec.seed = _int_key(data, "seed", source, 0, MAX_SEED, "too large (limit 2^63 − 1)") if "seed" in data else DEFAULT_SEED
    spec.scale = _scale(data, source)
    spec.n = _int_key(data, "n", source, 1) if "n" in data else None
    spec.sweep = _sweep(data, source)
    if "description" in data:
        if not isinstance(data["description"], str):
            raise ConfigError(f"{source}: key 'description': expected a string, got {type_name(data['description'])}")
        spec.description = data["description"]
    spec.claim = _claim(data, source)
    spec.dims = read_dims(data, kind, source)
    spec.params = read_params(data, kind, source)
    if kind.locate is not None:
        spec.params = kind.locate(spec.params, Path(source).parent)
    return spec


MAX_CLAIM_CHARS = 200
"""Longest ``claim:`` linear form."""


def _claim(data: dict, source: str) -> Vec | None:
    if "claim" not in data:
        return None
    text = data["claim"]
    if not isinstance(text, str) or not text.isascii() or len(text) > MAX_CLAIM_CHARS:
        raise ConfigError(
            f"{source}: key 'claim': expected a linear form of at most {MAX_CLAIM_CHARS} ASCII characters "
            f"such as \"6 d_std + 6 d_sum + d_exp\", got {type_name(text)} {short(text)}"
        )
    try:
        return as_vec(text)
    except ConfigError as e:
        raise ConfigError(f"{source}: key 'claim': {e}") from None


def _kind_names() -> str:
    return ", ".join(kind_names())


def _scale(data: dict, source: str) -> float:
    if "scale" not in data:
        return DEFAULT_SCALE
    scale = data["scale"]
    if isinstance(scale, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            scale = float(scale)
        except ValueError:
            pass
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"{source}: key 'scale': expected a positive number, got {short(data['scale'])}")
    return float(scale)


def _int_key(
    data: dict, key: str, source: str, minimum: int, maximum: int | None = LIMIT, beyond: str = "too large (limit 10^15)"
) -> int:
    """The integer under ``key``, at least ``minimum`` and (unless None) at most ``maximum``."""
    value = data[key]
    if not is_int(value) or value < minimum:
        raise ConfigError(f"{source}: key {key!r}: expected an integer >= {minimum}, got {short(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{source}: key {key!r}: {value} is {beyond}")
    return value


def _sweep(data: dict, source: str) -> tuple[int, ...] | None:
    if "sweep" not in data:
        return None
    values = data["sweep"]
    if not isinstance(values, list) or not values or not all(is_int(v) and 1 <= v <= LIMIT for v in values):
        raise ConfigError(f"{source}: key 'sweep': expected a non-empty list of integers >= 1, got {short(values)}")
    if len(values) > MAX_SWEEP_POINTS:
        raise ConfigError(f"{source}: key 'sweep': {len(values)} values, more than the limit of {MAX_SWEEP_POINTS}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{source}: key 'sweep': values must be distinct, got {short(values)}")
    return tuple(values)
