"""Model files (docs/cli.md): a YAML mapping naming a ``kind``, its ``dims`` and ``params``, and how to draw inputs.

Read with ``yaml.safe_load`` only (``!!python/...`` tags are refused), then validated key by key; every
error is a ConfigError naming the file, the key and what was expected. A dim is a positive integer
or an integer expression in ``n`` (``tc0sim.expr``: ``"n"``, ``"2*n"``, ``"n//4"``), resolved by
``ModelSpec.dims_at(n)``. Configuration keys of a kind (its params) may be given under ``params:``
or at the top level of the file, not both.
"""

from __future__ import annotations

import math
import os
import reprlib
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tc0sim.errors import ConfigError
from tc0sim.expr import LIMIT, Expr, parse
from tc0sim.ir.budget import BuildBudget
from tc0sim.ir.graph import Graph
from tc0sim.ir.vectors import Vec, as_vec
from tc0sim.kinds import Kind, Param, get_kind, kind_names
from tc0sim.kinds import build as build_kind
from tc0sim.limits import (
    MAX_FILE_BYTES,
    MAX_PRECISION,
    MAX_SEED,
    MAX_SWEEP_POINTS,
    MAX_YAML_INT_CHARS,
    MAX_YAML_NESTING,
    MAX_YAML_NODES,
    MIN_PRECISION,
)

TOP_LEVEL_KEYS: dict[str, str] = {
    "kind": "the operator or model to build (required)",
    "precision": "p, the number of significand bits of F_p (integer >= 2); used by eval",
    "dims": "mapping of the kind's dims to positive integers or expressions in n",
    "params": "mapping of the kind's params (defaults apply to those left out)",
    "seed": "integer >= 0 seeding the inputs and weights not supplied (default 0)",
    "scale": "positive number: inputs and weights are drawn as normal(0, 1) * scale (default 1)",
    "n": "default value of n for dims written as expressions in n (integer >= 1)",
    "sweep": "list of integers >= 1: the n values `tc0sim size` uses when --n is not given",
    "description": "free text shown in reports",
    "claim": "the depth a paper claims for this model, a linear form such as \"6 d_std + 6 d_sum + d_exp\"; "
    "`tc0sim depth` prints it beside the computed depth as tight, slack or violated",
}
"""Every top-level key a model file may have (besides the kind's params), with its meaning."""

DEFAULT_SEED = 0
DEFAULT_SCALE = 1.0


_TYPE_NAMES = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"), (list, "a list"), (dict, "a mapping"))
"""How an error message names a YAML value's type (bool before int: a bool is an int)."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 3


def _short(value: Any) -> str:
    """A bounded repr for messages: long lists and strings are elided with '...'."""
    return _REPR.repr(value)


def _clip(key: Any) -> str:
    """A user's key as text for messages, cut to 60 characters."""
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's SafeLoader when PyYAML has it (about 5 times faster), else the pure-Python one."""


def _check_bounds(text: str) -> None:
    """Refuse, from the parser's event stream and before anything is composed or constructed, a
    document nested deeper than ``MAX_YAML_NESTING`` (composing it would hit Python's recursion
    limit), one of more than ``MAX_YAML_NODES`` nodes with every alias expanded (the "billion
    laughs" file), and an alias of a collection that contains it."""
    try:
        _count_events(yaml.parse(text, Loader=_SAFE_LOADER))
    except yaml.YAMLError as e:
        if "maximum nesting depth" not in str(getattr(e, "problem", "")):
            raise
        # libyaml's scanner has its own, larger limit and may reach it while reading ahead
        raise yaml.composer.ComposerError(
            None, None, f"collections nested more than {MAX_YAML_NESTING} levels deep", e.problem_mark
        ) from None


def _count_events(events: Any) -> None:
    sizes: dict[str, int] = {}
    open_collections: list[tuple[str | None, int]] = []
    total = 0
    for event in events:
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(open_collections) >= MAX_YAML_NESTING:
                raise _composer_error(f"collections nested more than {MAX_YAML_NESTING} levels deep", event)
            open_collections.append((event.anchor, total))
            total += 1
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, before = open_collections.pop()
            if anchor is not None:
                sizes[anchor] = total - before
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_collections):
                raise _composer_error("an alias refers to a collection that contains it", event)
            total += sizes.get(event.anchor, 1)  # an undefined alias is reported by the composer
        if total > MAX_YAML_NODES:
            raise _composer_error(f"more than {MAX_YAML_NODES:,} YAML nodes with aliases expanded", event)


def _composer_error(problem: str, event: Any) -> yaml.composer.ComposerError:
    return yaml.composer.ComposerError(None, None, problem, event.start_mark)


class _BoundedLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """SafeLoader that refuses a mapping with a repeated key (plain safe_load keeps the last one)
    and an integer literal longer than ``MAX_YAML_INT_CHARS`` characters, before converting it."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_YAML_INT_CHARS:
            raise yaml.constructor.ConstructorError(
                None, None, f"integer literal longer than {MAX_YAML_INT_CHARS} characters", node.start_mark
            )
        return super().construct_yaml_int(node)


def _construct_mapping(loader: _BoundedLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            repeated = key in seen
        except TypeError:
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"repeated key {_short(key)}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """A one-line description of a YAML error with its line and column."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    context = getattr(error, "context", None)
    text = f"{context}: {problem}" if context else problem
    return " ".join(text.split()) + where


@dataclass
class ModelSpec:
    """A validated model file: kind, dims (ints or Exprs in n), params, precision and input drawing."""

    kind: str
    dims: dict[str, int | Expr]
    params: dict[str, Any] = field(default_factory=dict)
    precision: int | None = None
    seed: int = DEFAULT_SEED
    scale: float = DEFAULT_SCALE
    n: int | None = None
    sweep: tuple[int, ...] | None = None
    description: str = ""
    claim: Vec | None = None
    source: str = "<model>"

    @property
    def kind_info(self) -> Kind:
        return get_kind(self.kind)

    @property
    def uses_n(self) -> bool:
        """Whether some dim or param is an expression that reads n."""
        return any("n" in e.names for e in self._expressions())

    def _expressions(self) -> list[Expr]:
        found = [v for v in self.dims.values() if isinstance(v, Expr)]
        for value in self.params.values():
            if isinstance(value, Expr):
                found.append(value)
            elif isinstance(value, list):
                found.extend(v for v in value if isinstance(v, Expr))
        return found

    def _n(self, n: int | None) -> dict[str, int]:
        if n is None:
            n = self.n
        if n is None:
            if self.uses_n:
                raise ConfigError(
                    f"{self.source}: the dims use n but no n was given (pass --n or add a top-level 'n:' key)"
                )
            return {}
        if not _is_int(n) or n < 1:
            raise ConfigError(f"{self.source}: n must be an integer >= 1, got {_short(n)}")
        return {"n": n}

    def dims_at(self, n: int | None = None) -> dict[str, int]:
        """The dims as integers at ``n`` (default: the file's ``n:``); each must come out >= 1."""
        env = self._n(n)
        out: dict[str, int] = {}
        for name, value in self.dims.items():
            if isinstance(value, Expr):
                try:
                    value = value.eval(env)
                except ConfigError as e:
                    raise ConfigError(f"{self.source}: key 'dims.{name}': {e}") from None
                if value < 1:
                    at = f" at n={env['n']}" if env else ""
                    raise ConfigError(
                        f"{self.source}: key 'dims.{name}': {self.dims[name]} evaluates to {value}{at}; "
                        "dims must be positive integers"
                    )
            out[name] = value
        return out

    def params_at(self, n: int | None = None) -> dict[str, Any]:
        """The params with every integer expression evaluated at ``n``."""
        env = self._n(n) if any(self._expressions()) else {}
        out: dict[str, Any] = {}
        for name, value in self.params.items():
            try:
                if isinstance(value, Expr):
                    value = value.eval(env)
                elif isinstance(value, list):
                    value = [v.eval(env) if isinstance(v, Expr) else v for v in value]
            except ConfigError as e:
                raise ConfigError(f"{self.source}: key 'params.{name}': {e}") from None
            out[name] = value
        return out

    def build(self, n: int | None = None, budget: BuildBudget | None = None, share: bool = False) -> Graph:
        """The Graph of this model at ``n``, within ``budget`` if given; a refusal names the file.
        ``share``: repeated sub-circuits are built once and called (for depth and size)."""
        dims = self.dims_at(n)
        params = self.params_at(n)
        try:
            return build_kind(self.kind, dims, params, budget, share)
        except ConfigError as e:
            raise ConfigError(f"{self.source}: {e}") from None

    def label(self, n: int | None = None) -> str:
        """'attention (n=6, d=4)' — the kind and its dims at n; the kind alone when it has no dims."""
        try:
            dims = self.dims_at(n)
        except ConfigError:
            dims = {k: str(v) for k, v in self.dims.items()}
        return f"{self.kind} ({', '.join(f'{k}={v}' for k, v in dims.items())})" if dims else self.kind


MAX_FILE_READ = 4 * MAX_FILE_BYTES
"""Most bytes read from a model file (a UTF-8 character is at most 4 bytes): a longer regular file is
refused from its size, a device or pipe (``/dev/zero``) once that many bytes have been read."""


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, at most ``MAX_FILE_READ`` of them (more: a ConfigError). Opened without
    blocking, so a FIFO with no writer reads as empty instead of waiting."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_READ:
            raise ConfigError(f"{path}: the model file is {info.st_size:,} bytes, more than the limit of {MAX_FILE_READ:,}")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= MAX_FILE_READ:
            chunk = os.read(fd, min(1 << 16, MAX_FILE_READ + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
        kind = "file" if stat.S_ISREG(info.st_mode) else "device or pipe"
        raise ConfigError(f"{path}: the model {kind} gives more than {MAX_FILE_READ:,} bytes (the limit); not read further")
    finally:
        os.close(fd)


def load_model(path: str | Path) -> ModelSpec:
    """Read and validate the model file at ``path`` (at most ``MAX_FILE_READ`` bytes; YAML, safe_load only)."""
    path = Path(path)
    try:
        text = _read_bounded(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a model file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read model file: {e.strerror or e}") from None
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: the model file is longer than {MAX_FILE_BYTES:,} characters")
    return loads_model(text, source=str(path))


def loads_model(text: str, source: str = "<model>") -> ModelSpec:
    """Parse and validate model-file text; ``source`` names it in error messages."""
    try:
        _check_bounds(text)
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as e:
        problem = _yaml_problem(e)
        if "could not determine a constructor" in problem:
            raise ConfigError(
                f"{source}: YAML tag not allowed (model files are plain YAML; python tags are refused): {problem}"
            ) from None
        raise ConfigError(f"{source}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {_yaml_problem(e)}") from None
    except RecursionError:  # not reached within MAX_YAML_NESTING; kept so no input gives a traceback
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    return from_mapping(data, source)


def from_mapping(data: Any, source: str = "<model>") -> ModelSpec:
    """Validate an already-parsed model-file document."""
    if data is None:
        raise ConfigError(f"{source}: empty model file; expected a mapping with at least 'kind' and 'dims'")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys (kind, dims, ...) at the top level, got {_type_name(data)}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"{source}: top-level key {_short(bad_keys[0])} is not a string")

    if "kind" not in data:
        raise ConfigError(f"{source}: missing key 'kind'; expected one of {_kind_names()}")
    kind_name = data["kind"]
    if not isinstance(kind_name, str):
        raise ConfigError(f"{source}: key 'kind': expected a string naming a kind, got {_type_name(kind_name)}")
    try:
        kind = get_kind(kind_name)
    except ConfigError:
        raise ConfigError(f"{source}: key 'kind': unknown kind {_short(kind_name)}; expected one of {_kind_names()}") from None

    names = kind.defaults
    unknown = [k for k in data if k not in TOP_LEVEL_KEYS and k not in names]
    if unknown:
        allowed = list(TOP_LEVEL_KEYS) + [p for p in names if p not in TOP_LEVEL_KEYS]
        raise ConfigError(f"{source}: unknown key {_short(unknown[0])}; expected one of {', '.join(allowed)}")

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
            raise ConfigError(f"{source}: key 'description': expected a string, got {_type_name(data['description'])}")
        spec.description = data["description"]
    spec.claim = _claim(data, source)
    spec.dims = _dims(data, kind, source)
    spec.params = _params(data, kind, source)
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
            f"such as \"6 d_std + 6 d_sum + d_exp\", got {_type_name(text)} {_short(text)}"
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
        raise ConfigError(f"{source}: key 'scale': expected a positive number, got {_short(data['scale'])}")
    return float(scale)


def _int_key(
    data: dict, key: str, source: str, minimum: int, maximum: int | None = LIMIT, beyond: str = "too large (limit 10^15)"
) -> int:
    """The integer under ``key``, at least ``minimum`` and (unless None) at most ``maximum``."""
    value = data[key]
    if not _is_int(value) or value < minimum:
        raise ConfigError(f"{source}: key {key!r}: expected an integer >= {minimum}, got {_short(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{source}: key {key!r}: {value} is {beyond}")
    return value


def _sweep(data: dict, source: str) -> tuple[int, ...] | None:
    if "sweep" not in data:
        return None
    values = data["sweep"]
    if not isinstance(values, list) or not values or not all(_is_int(v) and 1 <= v <= LIMIT for v in values):
        raise ConfigError(f"{source}: key 'sweep': expected a non-empty list of integers >= 1, got {_short(values)}")
    if len(values) > MAX_SWEEP_POINTS:
        raise ConfigError(f"{source}: key 'sweep': {len(values)} values, more than the limit of {MAX_SWEEP_POINTS}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{source}: key 'sweep': values must be distinct, got {_short(values)}")
    return tuple(values)


def _expression(text: str, key: str, source: str) -> Expr:
    """An integer expression in n (``tc0sim.expr``), its errors naming the file and the key."""
    try:
        return parse(text, allowed=("n",))
    except ConfigError as e:
        raise ConfigError(f"{source}: key {key!r}: {e}") from None


def _dim_value(value: Any, key: str, source: str) -> int | Expr:
    if _is_int(value):
        if value < 1:
            raise ConfigError(f"{source}: key {key!r}: expected a positive integer, got {value}")
        if value > LIMIT:
            raise ConfigError(f"{source}: key {key!r}: {value} is too large (limit 10^15)")
        return value
    if isinstance(value, str):
        expr = _expression(value, key, source)
        if not expr.names:
            constant = expr.eval({})
            if constant < 1:
                raise ConfigError(f"{source}: key {key!r}: {_short(value)} evaluates to {constant}; expected a positive integer")
            return constant
        return expr
    raise ConfigError(
        f"{source}: key {key!r}: expected a positive integer or an expression in n such as \"2*n\", "
        f"got {_type_name(value)} {_short(value)}"
    )


def _dims(data: dict, kind: Kind, source: str) -> dict[str, int | Expr]:
    if "dims" not in data:
        if not kind.dims:
            return {}
        raise ConfigError(f"{source}: missing key 'dims'; kind {kind.name!r} takes dims {', '.join(kind.dims)}")
    dims = data["dims"]
    if dims is None and not kind.dims:
        return {}
    if not isinstance(dims, dict):
        raise ConfigError(
            f"{source}: key 'dims': expected a mapping of {', '.join(kind.dims) or 'no dims'}, got {_type_name(dims)}"
        )
    if kind.open_dims:
        bad = [k for k in dims if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise ConfigError(f"{source}: key 'dims.{_clip(bad[0])}': a dim name must be an identifier")
        return {name: _dim_value(value, f"dims.{name}", source) for name, value in dims.items()}
    unknown = [k for k in dims if k not in kind.dims]
    if unknown:
        raise ConfigError(
            f"{source}: key 'dims.{_clip(unknown[0])}': kind {kind.name!r} has no such dim; "
            f"expected {', '.join(kind.dims) or 'no dims'}"
        )
    missing = [k for k in kind.dims if k not in dims]
    if missing:
        raise ConfigError(
            f"{source}: key 'dims': missing {', '.join(missing)}; kind {kind.name!r} takes dims {', '.join(kind.dims)}"
        )
    return {name: _dim_value(dims[name], f"dims.{name}", source) for name in kind.dims}


def _params(data: dict, kind: Kind, source: str) -> dict[str, Any]:
    schema = {p.name: p for p in kind.params}
    given: dict[str, Any] = {}
    if "params" in data:
        params = data["params"]
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigError(f"{source}: key 'params': expected a mapping, got {_type_name(params)}")
        for key, value in params.items():
            if key not in schema:
                raise ConfigError(
                    f"{source}: key 'params.{_clip(key)}': kind {kind.name!r} has no such param; "
                    f"expected {', '.join(schema) or 'none'}"
                )
            given[key] = (value, f"params.{key}")
    for key in schema:
        if key in data and key not in TOP_LEVEL_KEYS:
            if key in given:
                raise ConfigError(f"{source}: key {key!r} is given both at the top level and under 'params'")
            given[key] = (data[key], key)
    return {key: _param_value(value, schema[key], where, source) for key, (value, where) in given.items()}


def _param_value(value: Any, param: Param, key: str, source: str) -> Any:
    """Read a param's integer expressions in n: an ``int`` param (or, for an ``any`` param with an
    integer default, like ``var``'s ``scales``) may be one, and so may an entry of an ``ints`` list.

    The value is checked against the kind's schema when the model is built (``Kind.validate``, at n).
    """
    if param.type == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key {key!r}: expected true or false, got {_type_name(value)} {_short(value)}")
        return value
    whole = param.type == "int" or (param.type == "any" and _is_int(param.default))
    if whole and (_is_int(value) or isinstance(value, str)):
        return _int_param(value, key, source)
    listed = param.type == "ints" or (param.type == "any" and isinstance(param.default, list) and all(_is_int(v) for v in param.default))
    if listed and isinstance(value, list):
        return [_int_param(v, f"{key}[{i}]", source) if isinstance(v, str) else v for i, v in enumerate(value)]
    return value


def _int_param(value: Any, key: str, source: str) -> int | Expr:
    if _is_int(value):
        if abs(value) > LIMIT:
            raise ConfigError(f"{source}: key {key!r}: {value} is too large (limit 10^15)")
        return value
    if isinstance(value, str):
        expr = _expression(value, key, source)
        return expr if expr.names else expr.eval({})
    raise ConfigError(f"{source}: key {key!r}: expected an integer or an expression in n, got {_type_name(value)} {_short(value)}")


__all__ = ["ModelSpec", "load_model", "loads_model", "from_mapping", "TOP_LEVEL_KEYS"]
