"""Blocking shared by the engines: index blocks cut along kept axes, and a map fused with its
⊕/⊗ computed piece by piece (docs/semantics.md §2.5), never holding the whole product tensor,
also when the ⊕ has further terms joined to the products by a concat (a bias: conv2d, linear;
VAR Lemma 5.6)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tc0sim.fp import Format, FpArithmeticError
from tc0sim.ir.graph import Node
from tc0sim.ir.moves import concat, reshape

PIECE_ELEMENTS = 1 << 14
"""Elements of a fused map (a matmul's products) the MPFR engines compute at once: the product
tensor is never held whole, and a piece's mpfr objects stay in the core's cache (a 2^20-element
block computed whole took 1.6 times as long per element here)."""


@dataclass
class Deferred:
    """An elementwise node evaluated later, in blocks, by its only consumer (a reduction); with
    ``extra``, the reduction's further terms (shape: its output's, then the terms' axis), joined
    to the map's values along their reduced axes, which are the trailing ones."""

    node: Node
    args: list[Any]
    extra: Any = None


def feeders_of_one_reduction(
    live: list[Node], keep: set[int], is_map: Callable[[Node], bool], is_reduction: Callable[[Node], bool]
) -> list[Node]:
    """Map nodes (not outputs) read by exactly one node, a reduction: the products an engine may
    evaluate fused with their ⊕/⊗, block by block, without holding the whole product tensor."""
    users: dict[int, list[Node]] = {}
    for node in live:
        for i in node.inputs:
            users.setdefault(i, []).append(node)
    return [
        node
        for node in live
        if is_map(node) and node.id not in keep and len(users.get(node.id, [])) == 1 and is_reduction(users[node.id][0])
    ]


def joined_feeders(
    live: list[Node], keep: set[int], is_map: Callable[[Node], bool], is_reduction: Callable[[Node], bool]
) -> list[tuple[Node, ...]]:
    """(map, [reshape,] concat) chains a reduction may also evaluate fused: ``⊕(concat([map or
    reshape(map), T], last axis))`` over that last axis, each node read only by the next (none an
    output), the map's leading axes the ⊕'s output axes and its trailing ones the terms (merged
    by the reshape): the ⊕ of the map's values and T's, e.g. conv2d's and linear's products and bias."""
    users: dict[int, list[Node]] = {}
    for node in live:
        for i in node.inputs:
            users.setdefault(i, []).append(node)
    by_id = {node.id: node for node in live}

    def read_only_by(node: Node, reader: Node) -> bool:
        return node.id not in keep and [u.id for u in users.get(node.id, [])] == [reader.id]

    chains = []
    for red in live:
        if not is_reduction(red) or not red.inputs or tuple(red.attrs.get("axes", ())) != (len(red.shape),):
            continue
        join = by_id[red.inputs[0]]
        if join.prim.move is not concat or len(join.inputs) != 2 or not read_only_by(join, red):
            continue
        first = by_id[join.inputs[0]]
        merged = first.prim.move is reshape and read_only_by(first, join)
        source = by_id[first.inputs[0]] if merged else first
        if is_map(source) and read_only_by(source, first if merged else join) and source.shape[: len(red.shape)] == red.shape:
            chains.append((source, first, join) if merged else (source, join))
    return chains


def defer(node: Node, args: list[Any]) -> Deferred:
    """The value of a node fused into its reduction: a map's own Deferred; a reshape merging the
    reduced axes passes its operand's on (the reduction reads them whole); a concat adds its
    second operand as further terms (``joined_feeders``)."""
    move = node.prim.move
    if move is None:
        return Deferred(node, args)
    if move is reshape:
        return args[0]
    return replace(args[0], extra=args[1])


def reduced_axes(node: Node, d: Deferred) -> tuple[int, ...]:
    """The axes of the deferred map ``d`` that its reduction ``node`` sums or multiplies over."""
    return tuple(node.attrs["axes"]) if d.extra is None else tuple(range(len(node.shape), len(d.node.shape)))


def join_terms(values: np.ndarray, extra: Any, index: tuple[slice, ...]) -> np.ndarray:
    """A block of a map's values (the reduction's output axes first, then the terms') with the
    further terms of those outputs (``extra[index]``) joined after them along one last axis."""
    kept = extra.ndim - 1
    return np.concatenate([values.reshape(values.shape[:kept] + (-1,)), extra[index]], axis=-1)


def _has_kernel(role: str) -> Callable[[Node], bool]:
    def test(node: Node) -> bool:
        return node.prim.role == role and node.prim.kernel is not None
    return test


is_map = _has_kernel("elementwise")
is_reduction = _has_kernel("reduction")


def blocks(shape: tuple[int, ...], kept: list[int], budget: int) -> Iterator[tuple[slice, ...]]:
    """Index blocks of at most ``budget`` elements (when possible), cut along the kept axes only,
    in the row-major order of the kept axes (so output blocks come in output order)."""
    full = tuple(slice(None) for _ in shape)
    total = math.prod(shape)
    if total <= budget or not kept:
        yield full
        return
    slab = total
    for j, axis in enumerate(kept):
        slab //= shape[axis]
        if slab <= budget or j == len(kept) - 1:
            step = max(1, budget // max(slab, 1))
            outer = kept[:j]
            for idx in np.ndindex(*[shape[a] for a in outer]):
                for start in range(0, shape[axis], step):
                    index = list(full)
                    for a, i in zip(outer, idx):
                        index[a] = slice(i, i + 1)
                    index[axis] = slice(start, min(start + step, shape[axis]))
                    yield tuple(index)
            return


class MapFailed(Exception):
    """The map of a fused map-and-reduce failed; ``error`` names its first failing element."""

    def __init__(self, error: FpArithmeticError) -> None:
        super().__init__(str(error))
        self.error = error


def map_reduce(
    F: Format, map_kernel: str | None, reduce_kernel: str | None, args: list[np.ndarray], axes: tuple[int, ...],
    budget: int | None = None, extra: np.ndarray | None = None,
) -> np.ndarray:
    """``F.reduce(reduce_kernel, F.map(map_kernel, *args), axes)`` (either kernel may be None) in
    pieces of at most ``budget`` map elements (PIECE_ELEMENTS) cut along the kept axes, so the
    map's values are never held whole; with ``extra`` (further terms, ``Deferred.extra``) each
    output's ⊕ also takes its row of them. Same values, and the same error as the whole computation:
    the map's first failing element in row-major order (raised as MapFailed), else the
    reduction's first failing output element."""
    budget = budget or PIECE_ELEMENTS
    shape = np.shape(args[0])
    kept = [i for i in range(len(shape)) if i not in axes]
    out = np.empty(tuple(shape[i] for i in kept), dtype=object)
    reduce_error: FpArithmeticError | None = None
    for piece in blocks(shape, kept, budget):
        try:
            values = F.map(map_kernel, *(a[piece] for a in args), origin=starts(piece)) if map_kernel else args[0][piece]
        except FpArithmeticError as e:
            raise MapFailed(e if not axes else _first_map_error(F, map_kernel, args, budget)) from None
        out_piece = tuple(piece[i] for i in kept)
        if not reduce_kernel:
            out[out_piece] = values
        elif reduce_error is None:  # after one, the pieces left are only checked for map errors
            if extra is not None:
                values = join_terms(values, extra, out_piece)
            try:
                out[out_piece] = F.reduce(reduce_kernel, values, axes if extra is None else (len(kept),),
                                          origin=starts(out_piece))
            except FpArithmeticError as e:
                reduce_error = e
    if reduce_error is not None:
        raise reduce_error
    return out


def _first_map_error(F: Format, kernel: str | None, args: list[np.ndarray], budget: int) -> FpArithmeticError:
    """The error of the map's first failing element in row-major order (pieces cut along the
    leading axes are contiguous in that order)."""
    shape = np.shape(args[0])
    for piece in blocks(shape, list(range(len(shape))), budget):
        try:
            F.map(kernel, *(a[piece] for a in args), origin=starts(piece))
        except FpArithmeticError as e:
            return e
    raise AssertionError("a map that failed in pieces succeeded in row-major pieces")


def starts(index: tuple[slice, ...]) -> tuple[int, ...]:
    """Where a block ``index`` of slices begins."""
    return tuple(s.start or 0 for s in index)


def largest_block(shape: tuple[int, ...], axes: tuple[int, ...], budget: int) -> int:
    """Elements of the largest block ``blocks`` cuts (the first: the others are no larger)."""
    first = next(blocks(shape, [i for i in range(len(shape)) if i not in axes], budget))
    return math.prod(len(range(*s.indices(n))) for s, n in zip(first, shape))


def fused_maps(
    live: list[Node], keep: set[int], is_map: Callable[[Node], bool], is_reduction: Callable[[Node], bool],
    larger_than: int | None = None,
) -> set[int]:
    """The maps an engine evaluates with their reduction, block by block: a map read only by a
    reduction (``feeders_of_one_reduction``) or joined to its further terms with the chain that
    joins it (``joined_feeders``), only those of more than ``larger_than`` elements if given."""
    big = (lambda node: True) if larger_than is None else (lambda node: node.size > larger_than)  # noqa: E731
    joined = {n.id for chain in joined_feeders(live, keep, is_map, is_reduction) if big(chain[0]) for n in chain}
    return joined | {n.id for n in feeders_of_one_reduction(live, keep, is_map, is_reduction) if big(n)}
