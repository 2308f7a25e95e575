"""The model-file kind ``torch``: a module made by the user's own factory, traced (docs/torch.md).

    kind: torch
    module: path/to/file.py:make_model      # relative to the model file, or package.module:make_model
    kwargs: {depth: 2, width: 64}           # passed to the factory
    inputs: {x: {shape: [1, n, 64]}, label: {shape: [1], dtype: int64}, mask: null}
    dims: {n: 16}                           # any names; shapes may use them (integer expressions)

The factory's Python file is imported and run: it is the user's own code, trusted as such.
PyTorch is imported only when the kind is built.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.expr import parse
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.ir.params import Param

REF = "torch.export → core ATen → primitives (docs/torch.md)"
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool")
"""The dtypes an input may be given (default: the module's first floating parameter's, else float32)."""

_MODULES: dict[tuple[str, str], Any] = {}
_PROGRAMS: dict[tuple[int, str], Any] = {}


def locate(params: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """``module: file.py:factory`` made absolute, relative to the model file's directory ``base``."""
    out = dict(params)
    spec = out.get("module")
    if isinstance(spec, str) and ":" in spec:
        where, _, factory = spec.rpartition(":")
        if where.endswith(".py") and not Path(where).is_absolute():
            out["module"] = f"{(base / where).resolve()}:{factory}"
    return out


def _refused(param: str, text: str) -> ConfigError:
    return ConfigError(f"torch: param {param!r} {text}" if text.startswith("must") else f"torch: param {param!r}: {text}")


def _module_spec(spec: str) -> str:
    """``module``: ``file.py:factory`` or ``package.module:factory`` (null until given: the build refuses it)."""
    if spec.count(":") < 1 or not spec.rpartition(":")[2].isidentifier():
        raise _refused("module", f"must be 'file.py:factory' or 'package.module:factory', got {spec[:80]!r}")
    return spec


def _kwargs(value: Any) -> dict[str, Any]:
    """``kwargs``: a mapping of the factory's keyword argument names to values."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.isidentifier() for k in value):
        raise _refused("kwargs", "must be a mapping of the factory's keyword argument names to values")
    return value


def _inputs(value: Any) -> dict[str, Any]:
    """``inputs``: forward's argument names to ``{shape: [...], dtype: ...}`` (sizes or expressions in the dims)."""
    if not isinstance(value, dict):
        raise _refused("inputs", "must map forward's argument names to {shape: [...], dtype: ...}")
    for name, spec in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise _refused("inputs", f"an input name must be an identifier, got {str(name)[:40]!r}")
        if spec is None:  # forward's argument passed as None (an optional mask, a cache)
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list) or set(spec) - {"shape", "dtype"}:
            raise _refused("inputs", f"inputs.{name}: expected {{shape: [...], dtype: ...}}")
        if not all(isinstance(e, (int, str)) and not isinstance(e, bool) for e in spec["shape"]):
            raise _refused("inputs", f"inputs.{name}.shape: expected sizes or expressions in the dims")
        if spec.get("dtype") is not None and spec["dtype"] not in DTYPES:
            raise _refused("inputs", f"inputs.{name}.dtype: expected one of {', '.join(DTYPES)}")
    return value


PARAMS: tuple[Param, ...] = (
    Param("module", "str", None, "the factory, 'file.py:factory' (relative to the model file) or 'package.module:factory'; "
          "its file is imported and run (required)", nullable=True, parse=_module_spec),
    Param("kwargs", "any", {}, "keyword arguments of the factory (a mapping)", parse=_kwargs),
    Param("inputs", "any", {}, "forward's arguments: {name: {shape: [sizes or expressions in the dims], dtype: ...}}",
          parse=_inputs),
)
"""The kind's schema; its dims are open (any names the model file gives, used by the input shapes)."""


def _factory(spec: Any) -> Any:
    if not spec:
        raise ConfigError("kind 'torch': param 'module' must be given ('file.py:factory' or 'package.module:factory')")
    where, _, name = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ConfigError(f"kind 'torch': module file {where} does not exist")
            unit = importlib.util.spec_from_file_location(f"tc0sim_user_{abs(hash(str(path)))}", path)
            module = importlib.util.module_from_spec(unit)
            sys.path.insert(0, str(path.parent))
            try:
                unit.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.parent))
        else:
            module = importlib.import_module(where)
    except ConfigError:
        raise
    except Exception as e:  # the user's code may raise anything while it is imported
        raise ConfigError(f"kind 'torch': importing {where} failed: {type(e).__name__}: {e}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ConfigError(f"kind 'torch': {where} has no callable {name!r}")
    return factory


def _module(params: Mapping[str, Any]) -> Any:
    kwargs = params.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"kind 'torch': param 'kwargs' must be a mapping, got {kwargs!r}")
    key = (str(params.get("module")), repr(sorted(kwargs.items())))
    if key not in _MODULES:
        try:
            with redirect_stdout(sys.stderr):  # the user's prints must not mix with a report (--format json)
                _MODULES[key] = _factory(params.get("module"))(**kwargs)
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(f"kind 'torch': {params.get('module')}(**kwargs) failed: {type(e).__name__}: {e}") from None
    return _MODULES[key]


def _size(entry: Any, dims: Mapping[str, int], where: str) -> int:
    if isinstance(entry, int) and not isinstance(entry, bool) and entry >= 0:
        return entry
    if isinstance(entry, str):
        try:
            value = parse(entry, allowed=tuple(dims)).eval(dict(dims))
        except ConfigError as e:
            raise ConfigError(f"kind 'torch': {where}: {e}") from None
        if value >= 0:
            return value
    raise ConfigError(f"kind 'torch': {where}: expected a size ≥ 0 or an expression in the dims {', '.join(dims) or '(none)'}, got {entry!r}")


def example_inputs(inputs: Any, dims: Mapping[str, int], default_dtype: Any, device: Any = None) -> dict[str, Any]:
    """Example tensors of the declared shapes and dtypes (zeros: only shapes matter to the trace), on
    ``device`` (the module's: a module made on the meta device is traced on meta inputs)."""
    import torch

    if not isinstance(inputs, dict) or not inputs:
        raise ConfigError("kind 'torch': param 'inputs' must map forward's argument names to {shape: [...], dtype: ...}")
    out = {}
    for name, spec in inputs.items():
        if spec is None:
            out[name] = None
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list) or set(spec) - {"shape", "dtype"}:
            raise ConfigError(f"kind 'torch': inputs.{name}: expected {{shape: [...], dtype: ...}}, got {spec!r}")
        dtype = spec.get("dtype")
        if dtype is not None and dtype not in DTYPES:
            raise ConfigError(f"kind 'torch': inputs.{name}.dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
        shape = [_size(s, dims, f"inputs.{name}.shape[{i}]") for i, s in enumerate(spec["shape"])]
        out[name] = torch.zeros(shape, dtype=getattr(torch, dtype) if dtype else default_dtype, device=device)
    return out


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    try:
        import torch
    except ImportError:
        raise ConfigError("kind 'torch' needs PyTorch (pip install 'tc0sim[torch]')") from None
    from tc0sim.frontends.torch.lower import lower_into

    module = _module(params)
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"kind 'torch': {params['module']} returned {type(module).__name__}, not a torch.nn.Module")
    floating = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
    device = next((t.device for t in (*module.parameters(), *module.buffers()) if t.device.type == "meta"), None)
    example = example_inputs(params.get("inputs"), dims, floating, device)
    accepted = inspect.signature(module.forward).parameters
    unknown = [name for name in example if name not in accepted]
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(f"kind 'torch': inputs.{unknown[0]}: {type(module).__name__}.forward takes {', '.join(accepted) or 'no arguments'}")
    return lower_into(_program(module, params.get("inputs"), dims, example), example, b)


def symbolic_axes(inputs: Mapping[str, Any], dims: Mapping[str, int]) -> dict[str, dict[int, str]] | None:
    """The axes given by a bare dim name (``torch.export.Dim``s), or None when some axis is an
    expression in the dims or a dim is below 2 (then the program is exported at each size)."""
    axes: dict[str, dict[int, str]] = {}
    for name, spec in inputs.items():
        for axis, entry in enumerate(spec["shape"] if spec else ()):
            if isinstance(entry, str) and entry.strip() in dims and dims[entry.strip()] >= 2:
                axes.setdefault(name, {})[axis] = entry.strip()
            elif isinstance(entry, str):
                return None
    return axes or None


def _program(module: Any, inputs: Mapping[str, Any], dims: Mapping[str, int], example: Mapping[str, Any]) -> Any:
    """The exported program: once for every size when the dims can be symbolic (and torch.export
    accepts them as ``Dim``s), else once per size."""
    from tc0sim.frontends.torch.export import export_program

    dtypes = repr([(n, getattr(t, "dtype", None)) for n, t in example.items()])
    axes = symbolic_axes(inputs, dims)
    if axes is not None:
        key = (id(module), dtypes, repr(sorted(inputs.items())))
        if key not in _PROGRAMS:
            try:
                _PROGRAMS[key] = export_program(module, example, axes)
            except ConfigError:  # the module constrains or specialises a dim: export each size
                _PROGRAMS[key] = None
        if _PROGRAMS[key] is not None:
            return _PROGRAMS[key]
    key = (id(module), dtypes, repr([tuple(getattr(t, "shape", ())) for t in example.values()]))
    if key not in _PROGRAMS:
        _PROGRAMS[key] = export_program(module, example)
    return _PROGRAMS[key]


KINDS: tuple[Kind, ...] = (
    Kind(
        "torch",
        (),
        _build,
        REF,
        params=PARAMS,
        model=True,
        doc="any torch.nn.Module from a factory (the user's Python code is imported and run), traced by torch.export",
        ignored_weights=("*num_batches_tracked",),
        open_dims=True,
        locate=locate,
    ),
)
"""The kinds this module defines (listed by ``tc0sim.frontends``)."""
