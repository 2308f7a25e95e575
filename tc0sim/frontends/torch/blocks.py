"""Repeated blocks: a module's identical sub-blocks exported once, their program replayed per call.

A transformer repeats one block class dozens of times; ``torch.export`` and the core-ATen
decomposition cost the same per block, so a 32-layer model pays 32 times for one program. Here
the blocks are found (``repeated``), made opaque while the whole module is exported (``opaque``:
each call becomes one ``tc0sim_blocks::call`` node, ``block_op()``, whose outputs have the shapes
the block's own forward gives), and each distinct (block, arguments) is exported once by itself
(``export_bodies``). The lowering
replays that program at every call (lower.py), with the instance's weights under its state_dict
names and its module path as the scopes' prefix: the graph is the one the plain export gives.

A child of an ``nn.ModuleList``, ``nn.Sequential`` or ``nn.ModuleDict`` that has submodules of its
own and a floating parameter is treated as repeated only when at least two such children are
*the same function*: same class and forward (no per-instance ``forward``), no hooks, the same
parameter and buffer names, shapes and dtypes, equal integer buffers and tensor attributes (by
value; a meta tensor has none, so it differs), every other attribute equal (numbers, strings,
containers of them) or the very same object, recursively over their submodules — except plain
attributes (a layer index) that forward never reads (``watching``). Anything else — a tied or shared module or parameter, a call with an argument
that is not a tensor or a plain constant, an output that is a view of an input, a block that
mutates its inputs or buffers, symbolic sizes — and the module is exported the plain way.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.export.graph_signature import OutputKind
from torch.fx.experimental.proxy_tensor import disable_proxy_modes_tracing
from torch.utils import _pytree as pytree

CONTAINERS = (nn.ModuleList, nn.Sequential, nn.ModuleDict)
"""Modules whose children may be repeated blocks."""

HOOKS = frozenset({
    "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
})
"""A module's hook tables: a repeated block must have none (state-dict hooks are harmless but rare)."""

STATE = frozenset({"_parameters", "_buffers", "_modules"})
"""Compared by their own rules (names, shapes, dtypes; submodules recursively)."""

CONSTANTS = (bool, int, float, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout)
"""Non-tensor call arguments a block program may specialise on (part of its key)."""

PLAIN = (bool, int, float, str, type(None))
"""Attributes that may differ between repeated blocks if forward never reads them (a layer index)."""


class NotRepeatable(Exception):
    """Raised while exporting: the fast path does not apply; the plain export is used instead."""


class ReadsDifference(NotRepeatable):
    """A block's forward reads an attribute that differs within its group."""


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return (a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and a.device.type != "meta"
                and bool(torch.equal(a, b)))
    if isinstance(a, CONSTANTS):
        return a == b
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (set, frozenset)):
        return all(isinstance(x, CONSTANTS) for x in a) and a == b
    return False


def _same_tensor_slot(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """Parameters and floating buffers: same shape and dtype (values are weights); others: equal values."""
    if a is None or b is None:
        return a is b
    if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return a.is_floating_point() or _same_value(a, b)


def same_function(a: nn.Module, b: nn.Module, soft: set[tuple[str, str]] | None = None, where: str = "") -> bool:
    """True when ``a`` and ``b`` compute the same function of (inputs, parameters, floating buffers).

    With ``soft``, an attribute that is a plain constant in both (a number, string, bool, None) but
    differs (a layer index) is added to it as (submodule path, name) instead: the blocks are the
    same function only if their forward never reads it (``watching``)."""
    if type(a) is not type(b) or "forward" in vars(a) or "forward" in vars(b):
        return False
    da, db = vars(a), vars(b)
    if list(da) != list(db) or any(da.get(h) or db.get(h) for h in HOOKS):
        return False
    for key in da:
        if key in HOOKS or key in STATE or _same_value(da[key], db[key]):
            continue
        if soft is None or not isinstance(da[key], PLAIN) or not isinstance(db[key], PLAIN) or key.startswith("_"):
            return False
        soft.add((where, key))
    if not all(list(da[k]) == list(db[k]) and all(_same_tensor_slot(da[k][n], db[k][n]) for n in da[k])
               for k in ("_parameters", "_buffers")):
        return False
    return list(da["_modules"]) == list(db["_modules"]) and all(
        (x is y) if x is None or y is None else same_function(x, y, soft, f"{where}.{n}" if where else n)
        for n, x, y in ((n, da["_modules"][n], db["_modules"][n]) for n in da["_modules"]))


def _hooked() -> bool:
    """Global module hooks see every call: with any, nothing is treated as repeated."""
    from torch.nn.modules import module as m

    return any(getattr(m, name, None) for name in dir(m) if name.startswith("_global_") and name.endswith("hooks"))


def repeated(module: nn.Module, soft: bool = True) -> dict[str, tuple[int, frozenset[tuple[str, str]]]]:
    """The outermost repeated blocks: module path → (group number, the attributes that differ in
    the group and must not be read, as (submodule path, name)); groups of ≥ 2 blocks. Without
    ``soft``, blocks must not differ in any attribute."""
    names: dict[int, list[str]] = {}
    for name, sub in module.named_modules(remove_duplicate=False):
        names.setdefault(id(sub), []).append(name)
    weights = [id(p) for _, p in itertools.chain(module.named_parameters(remove_duplicate=False),
                                                   module.named_buffers(remove_duplicate=False))]
    if _hooked() or len(set(weights)) != len(weights) or any(len(v) > 1 for v in names.values()):
        return {}
    chosen: dict[str, tuple[int, frozenset[tuple[str, str]]]] = {}
    groups: list[nn.Module] = []
    differ: list[set[tuple[str, str]]] = []
    for name, container in module.named_modules():
        if not isinstance(container, CONTAINERS) or any(name == c or name.startswith(c + ".") for c in chosen):
            continue
        found: dict[int, list[str]] = {}
        for child_name, child in container.named_children():
            if next(child.children(), None) is None or not any(p.is_floating_point() for p in child.parameters()):
                continue  # a leaf layer (Linear, Conv2d, ...): exporting it alone costs more than it saves
            path = f"{name}.{child_name}" if name else child_name
            for g in range(len(groups)):
                differs: set[tuple[str, str]] | None = set() if soft else None
                if same_function(groups[g], child, differs):
                    found.setdefault(g, []).append(path)
                    differ[g] |= differs or set()
                    break
            else:
                groups.append(child)
                differ.append(set())
                found[len(groups) - 1] = [path]
        for g, paths in found.items():
            if len(paths) >= 2:
                chosen.update((p, (g, frozenset(differ[g]))) for p in paths)
    return chosen


@contextmanager
def watching(module: nn.Module, watched: frozenset[tuple[str, str]]) -> Iterator[set[str]]:
    """Inside, a read of a watched attribute of ``module``'s submodules is logged (their classes are
    swapped for subclasses that log it; the originals are restored after)."""
    log: set[str] = set()
    swapped: list[tuple[nn.Module, type]] = []
    by_path: dict[str, set[str]] = {}
    for path, attr in watched:
        by_path.setdefault(path, set()).add(attr)
    try:
        for path, attrs in by_path.items():
            sub = module.get_submodule(path)
            cls = type(sub)

            def getattribute(self: Any, name: str, _attrs: set[str] = attrs, _cls: type = cls, _path: str = path) -> Any:
                if name in _attrs:
                    log.add(f"{_path}.{name}" if _path else name)
                return _cls.__getattribute__(self, name)

            tracked = type(cls.__name__, (cls,), {"__getattribute__": getattribute, "__module__": cls.__module__,
                                                  "__qualname__": cls.__qualname__})
            swapped.append((sub, cls))
            sub.__class__ = tracked
        yield log
    finally:
        for sub, cls in swapped:
            sub.__class__ = cls


@dataclass
class Call:
    """One call of a repeated block: its instance, path and class, the body key, the call's structure."""

    module: nn.Module
    path: str
    kind: str
    key: tuple
    spec: Any
    """The pytree spec of ``(args, kwargs)``; ``constants`` holds the non-tensor leaves (None at tensors)."""
    constants: list[Any]
    watched: frozenset[tuple[str, str]] = frozenset()
    """Attributes that differ within the block's group: its forward must not read them."""


@dataclass
class Blocks:
    """The calls of the repeated blocks in an exported program and the program of each body."""

    calls: dict[int, Call] = field(default_factory=dict)
    outputs: dict[tuple, list[tuple]] = field(default_factory=dict)
    """Body key → (shape, strides, dtype, device) of each tensor output; ``out_specs`` the outputs'
    pytree spec and which of its leaves are None."""
    out_specs: dict[tuple, Any] = field(default_factory=dict)
    bodies: dict[tuple, torch.export.ExportedProgram] = field(default_factory=dict)

    def arguments(self, call: int, tensors: list[Any]) -> list[Any]:
        """The flat leaves of the call's ``(args, kwargs)``: the op's ``tensors`` (after the anchor
        weight, its first) in the tensor slots."""
        given = iter(tensors[1:])
        return [next(given) if c is None else c for c in self.calls[call].constants]


_ACTIVE: list[Blocks] = []
"""The Blocks records in use (the op's fake and real kernels look their calls up there)."""
_NUMBERS = itertools.count()
"""Call numbers, unique in the process."""


def _find(call: int) -> Blocks:
    for blocks in reversed(_ACTIVE):
        if call in blocks.calls:
            return blocks
    raise RuntimeError(f"tc0sim_blocks::call {call} outside its trace")


@functools.cache
def block_op() -> Any:
    """The opaque op ``tc0sim_blocks::call(call, tensors) -> tensors`` of a block call (defined once per process)."""

    @torch.library.custom_op("tc0sim_blocks::call", mutates_args=())
    def call(call: int, args: list[torch.Tensor]) -> list[torch.Tensor]:
        """Never run: ``args[0]`` is a weight of the block, so a call is never folded."""
        raise RuntimeError("tc0sim_blocks::call is lowered by replaying its body, never run")

    @call.register_fake
    def _(call: int, args: list[torch.Tensor]) -> list[torch.Tensor]:
        blocks = _find(call)
        return [torch.empty_strided(s, st, dtype=d, device=v) for s, st, d, v in blocks.outputs[blocks.calls[call].key]]

    return torch.ops.tc0sim_blocks.call.default


def _leaf_key(leaf: Any) -> tuple:
    if isinstance(leaf, torch.Tensor):
        if not all(isinstance(s, int) for s in (*leaf.shape, *leaf.stride())):
            raise NotRepeatable("symbolic sizes")
        return ("tensor", tuple(leaf.shape), tuple(leaf.stride()), leaf.dtype, leaf.device.type)
    if isinstance(leaf, CONSTANTS):
        return (type(leaf).__name__, leaf)
    raise NotRepeatable(f"a block argument of type {type(leaf).__name__}")


def _wrapper(blocks: Blocks, module: nn.Module, path: str, group: int, watched: frozenset[tuple[str, str]]) -> Callable[..., Any]:
    """The block's forward while exporting: one op reading the block's first floating parameter
    (the anchor: the call then reads a weight, so it is never folded) and the call's tensors."""
    forward = type(module).forward
    op = block_op()
    anchor = next(name for name, p in module.named_parameters() if p.is_floating_point())

    def call(*args: Any, **kwargs: Any) -> Any:
        leaves, spec = pytree.tree_flatten((args, kwargs))
        key = (group, str(spec), tuple(_leaf_key(leaf) for leaf in leaves))
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        if key not in blocks.outputs:
            with disable_proxy_modes_tracing(), watching(module, watched) as read:
                out = forward(module, *args, **kwargs)
            if read:
                raise ReadsDifference(f"the blocks differ in {', '.join(sorted(read))}, which forward reads")
            out_leaves, out_spec = pytree.tree_flatten(out)
            outs = [o for o in out_leaves if o is not None]
            if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
                raise NotRepeatable("a block output that is not a tensor (or None)")
            if any(o._is_view() or any(o is t for t in tensors) for o in outs):
                raise NotRepeatable("a block output that is a view of its input")
            blocks.outputs[key] = [(tuple(o.shape), tuple(o.stride()), o.dtype, o.device) for o in outs]
            blocks.out_specs[key] = (out_spec, [o is None for o in out_leaves])
        n = next(_NUMBERS)
        blocks.calls[n] = Call(module, path, type(module).__name__, key, spec,
                               [None if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves], watched)
        results = iter(op(n, [module.get_parameter(anchor), *tensors]))
        out_spec, nones = blocks.out_specs[key]
        return pytree.tree_unflatten([None if none else next(results) for none in nones], out_spec)

    return call


@contextmanager
def opaque(module: nn.Module, chosen: dict[str, tuple[int, frozenset[tuple[str, str]]]]) -> Iterator[Blocks]:
    """While inside, every chosen block's call is one opaque op (``block_op()``) recorded in the Blocks."""
    blocks = Blocks()
    patched = [module.get_submodule(path) for path in chosen]
    for sub, (path, (group, watched)) in zip(patched, chosen.items()):
        sub.forward = _wrapper(blocks, sub, path, group, watched)
    try:
        with active(blocks):
            yield blocks
    finally:
        for sub in patched:
            del sub.forward


@contextmanager
def active(blocks: Blocks) -> Iterator[None]:
    """The op's kernels read ``blocks`` (while a program holding its calls is folded or re-traced)."""
    _ACTIVE.append(blocks)
    try:
        yield
    finally:
        _ACTIVE.remove(blocks)


def example(key_leaf: tuple) -> Any:
    """A tensor of a recorded argument's shape, strides and dtype (its values are never read)."""
    if key_leaf[0] != "tensor":
        return key_leaf[1]
    _, shape, stride, dtype, device = key_leaf
    tensor = torch.empty_strided(shape, stride, dtype=dtype, device=device)
    return tensor if device == "meta" else tensor.zero_()


def export_bodies(blocks: Blocks, export: Callable[[nn.Module, tuple, dict], torch.export.ExportedProgram]) -> None:
    """Export each distinct (block, arguments) once, by itself; refuse bodies that mutate state."""
    for call in blocks.calls.values():
        if call.key in blocks.bodies:
            continue
        args, kwargs = pytree.tree_unflatten([example(leaf) for leaf in call.key[2]], call.spec)
        with watching(call.module, call.watched) as read:
            program = export(call.module, args, kwargs)
        if read:
            raise ReadsDifference(f"the blocks differ in {', '.join(sorted(read))}, which forward reads")
        if any(spec.kind != OutputKind.USER_OUTPUT for spec in program.graph_signature.output_specs):
            raise NotRepeatable("a block that mutates its inputs or buffers")
        blocks.bodies[call.key] = program
