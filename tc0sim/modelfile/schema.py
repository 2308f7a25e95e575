"""A model file's dims and params, checked against its kind's schema (``Kind.dims``, ``Kind.params``);
a dim or an integer param may be an integer expression in n (``tc0sim.expr``)."""

from __future__ import annotations

from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.expr import LIMIT, Expr, parse
from tc0sim.kinds import Kind, Param
from tc0sim.modelfile.messages import clip, is_int, short, type_name
from tc0sim.modelfile.spec import TOP_LEVEL_KEYS

def _expression(text: str, key: str, source: str) -> Expr:
    """An integer expression in n (``tc0sim.expr``), its errors naming the file and the key."""
    try:
        return parse(text, allowed=("n",))
    except ConfigError as e:
        raise ConfigError(f"{source}: key {key!r}: {e}") from None


def _dim_value(value: Any, key: str, source: str) -> int | Expr:
    if is_int(value):
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
                raise ConfigError(f"{source}: key {key!r}: {short(value)} evaluates to {constant}; expected a positive integer")
            return constant
        return expr
    raise ConfigError(
        f"{source}: key {key!r}: expected a positive integer or an expression in n such as \"2*n\", "
        f"got {type_name(value)} {short(value)}"
    )


def read_dims(data: dict, kind: Kind, source: str) -> dict[str, int | Expr]:
    if "dims" not in data:
        if not kind.dims:
            return {}
        raise ConfigError(f"{source}: missing key 'dims'; kind {kind.name!r} takes dims {', '.join(kind.dims)}")
    dims = data["dims"]
    if dims is None and not kind.dims:
        return {}
    if not isinstance(dims, dict):
        raise ConfigError(
            f"{source}: key 'dims': expected a mapping of {', '.join(kind.dims) or 'no dims'}, got {type_name(dims)}"
        )
    if kind.open_dims:
        bad = [k for k in dims if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise ConfigError(f"{source}: key 'dims.{clip(bad[0])}': a dim name must be an identifier")
        return {name: _dim_value(value, f"dims.{name}", source) for name, value in dims.items()}
    unknown = [k for k in dims if k not in kind.dims]
    if unknown:
        raise ConfigError(
            f"{source}: key 'dims.{clip(unknown[0])}': kind {kind.name!r} has no such dim; "
            f"expected {', '.join(kind.dims) or 'no dims'}"
        )
    missing = [k for k in kind.dims if k not in dims]
    if missing:
        raise ConfigError(
            f"{source}: key 'dims': missing {', '.join(missing)}; kind {kind.name!r} takes dims {', '.join(kind.dims)}"
        )
    return {name: _dim_value(dims[name], f"dims.{name}", source) for name in kind.dims}


def read_params(data: dict, kind: Kind, source: str) -> dict[str, Any]:
    schema = {p.name: p for p in kind.params}
    given: dict[str, Any] = {}
    if "params" in data:
        params = data["params"]
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigError(f"{source}: key 'params': expected a mapping, got {type_name(params)}")
        for key, value in params.items():
            if key not in schema:
                raise ConfigError(
                    f"{source}: key 'params.{clip(key)}': kind {kind.name!r} has no such param; "
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
            raise ConfigError(f"{source}: key {key!r}: expected true or false, got {type_name(value)} {short(value)}")
        return value
    whole = param.type == "int" or (param.type == "any" and is_int(param.default))
    if whole and (is_int(value) or isinstance(value, str)):
        return _int_param(value, key, source)
    listed = param.type == "ints" or (param.type == "any" and isinstance(param.default, list) and all(is_int(v) for v in param.default))
    if listed and isinstance(value, list):
        return [_int_param(v, f"{key}[{i}]", source) if isinstance(v, str) else v for i, v in enumerate(value)]
    return value


def _int_param(value: Any, key: str, source: str) -> int | Expr:
    if is_int(value):
        if abs(value) > LIMIT:
            raise ConfigError(f"{source}: key {key!r}: {value} is too large (limit 10^15)")
        return value
    if isinstance(value, str):
        expr = _expression(value, key, source)
        return expr if expr.names else expr.eval({})
    raise ConfigError(f"{source}: key {key!r}: expected an integer or an expression in n, got {type_name(value)} {short(value)}")
