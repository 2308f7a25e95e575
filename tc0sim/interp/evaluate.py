"""The evaluate interpreter: bit-exact p-bit evaluation of a DAG (docs/semantics.md, docs/dag.md).

Inputs and constants are rounded to p bits on entry; every compute node applies one F_p array
operation, so every primitive rounds exactly once. Arithmetic errors are re-raised with the node
name and its operator scope.

Engines (``engine=``): ``mpfr`` applies ``EVAL_RULES`` (gmpy2/MPFR, any p), optionally in
parallel on Dask (``workers``/``scheduler``, tc0sim.interp.parallel); ``fast`` (p <= 25) computes
in binary64 with certified single rounding (tc0sim.interp.fast); ``auto`` picks ``fast`` where
it applies. Every engine gives the same bits and the same errors.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.ir.exact import constant_value
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.moves import VIEWS, reshape, same_place
from tc0sim.ir.primitives import PRIMITIVES, Primitive
from tc0sim.ir.rules import RuleTable
from tc0sim.ir.wiring import move

Rule = Callable[[Format, Node, list[np.ndarray]], np.ndarray]


def _map(name: str) -> Rule:
    return lambda F, node, args: F.map(name, *args)


def _reduce(name: str) -> Rule:
    return lambda F, node, args: F.reduce(name, args[0], node.attrs["axes"])


def _move(F: Format, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return move(node, args, lambda: F.zero)


def _constant(F: Format, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return F.asarray(constant_value(node.attrs["value"]))


def _derive(row: Primitive) -> Rule | None:
    """A primitive with an F_p kernel applies it (elementwise or per reduced row); wiring moves."""
    if row.kernel is not None:
        return _reduce(row.kernel) if row.role == "reduction" else _map(row.kernel)
    return _move if row.move is not None else None


EVAL_RULES: RuleTable[Rule] = RuleTable("evaluate", _derive)
EVAL_RULES["constant"] = _constant
"""One rule per primitive; ``input`` is handled by the evaluator itself (it reads the inputs)."""


def random_inputs(graph: Graph, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Draw every input as normal(0, 1)·scale in float64, one stream per (seed, input name)."""
    out = {}
    for name, nid in graph.inputs.items():
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        out[name] = rng.standard_normal(graph.node(nid).shape) * float(scale)
    return out


def _entry(F: Format, node: Node, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if arr.shape != node.shape:
        raise ConfigError(f"input {node.name!r} has shape {arr.shape}, expected {node.shape}")
    try:
        return F.asarray(arr)
    except FpArithmeticError as e:
        raise type(e)(f"input {node.name!r}: {e}") from None


ENGINES = ("auto", "fast", "mpfr")
VALUES = ("mpfr", "float64", "native")
"""Representations of evaluate's outputs (see ``evaluate``)."""


@dataclass
class EvalStats:
    """What an evaluation did: gates per engine, certificates, MPFR recomputations, time per operator."""

    gates: dict[str, int] = field(default_factory=dict)
    certified: int = 0
    """Elements of exp / ⊕ / ⊗ whose binary64 value was certified to round like the exact result."""
    recomputed: int = 0
    """Elements of fast-engine nodes recomputed by MPFR (uncertified, or outside binary64's range)."""
    seconds: dict[str, float] = field(default_factory=dict)
    engine: str = ""
    replayed: int = 0
    """Evaluations the Dask engine ran again serially (a task raised, or the cluster failed)."""

    def add_gates(self, engine: str, node: Node) -> None:
        if not PRIMITIVES[node.prim].is_wiring:
            self.gates[engine] = self.gates.get(engine, 0) + node.size

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "gates": dict(self.gates), "certified": self.certified,
            "recomputed": self.recomputed, "replayed": self.replayed, "seconds": dict(self.seconds),
        }


class NamedError(Exception):
    """Carries an arithmetic error already prefixed with the node that raised it."""

    def __init__(self, error: FpArithmeticError) -> None:
        super().__init__(str(error))
        self.error = error


def named(node: Node, error: FpArithmeticError) -> FpArithmeticError:
    """The error re-raised with the node name and its operator scope."""
    return type(error)(f"node {node.name} in operator {node.scope_path or '(top)'}: {error}")


PIECE_ELEMENTS = 1 << 14
"""Elements of a fused map (a matmul's products) the MPFR engines compute at once: the product
tensor is never held whole, and a piece's mpfr objects stay in the core's cache (a 2^20-element
block computed whole took 1.6 times as long per element here)."""


@dataclass
class Deferred:
    """An elementwise node evaluated later, in blocks, by its only consumer (a reduction)."""

    node: Node
    args: list[Any]


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


def _has_kernel(role: str) -> Callable[[Node], bool]:
    def test(node: Node) -> bool:
        row = PRIMITIVES.get(node.prim)
        return row is not None and row.role == role and row.kernel is not None
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
    budget: int | None = None,
) -> np.ndarray:
    """``F.reduce(reduce_kernel, F.map(map_kernel, *args), axes)`` (either kernel may be None) in
    pieces of at most ``budget`` map elements (PIECE_ELEMENTS) cut along the kept axes, so the
    map's values are never held whole. Same values, and the same error as the whole computation:
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
            try:
                out[out_piece] = F.reduce(reduce_kernel, values, axes, origin=starts(out_piece))
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


class MpfrEngine:
    """The reference engine: ``EVAL_RULES`` on object arrays of mpfr values."""

    name = "mpfr"

    def __init__(self, F: Format, stats: EvalStats, chunk_elements: int | None = None) -> None:
        self.F = F
        self.stats = stats
        self.chunk = chunk_elements
        self.fused: set[int] = set()

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        """Called once with the live nodes before evaluation: a map read only by a reduction is
        deferred to it and computed with it in pieces (docs/semantics.md §2.5)."""
        self.fused = {n.id for n in feeders_of_one_reduction(live, keep, is_map, is_reduction)}

    def entry(self, node: Node, value: Any) -> Any:
        return _entry(self.F, node, value)

    value_bytes = 100
    """Bytes of one computed value besides its p/8 bytes of significand (an mpfr object and its
    allocation; 72 bytes at p = 53 and 192 at p = 1000 by sys.getsizeof); each array slot
    referring to it is 8 bytes more."""

    pool_bytes = 0
    """Bytes of freed arrays the engine may keep for reuse."""

    def bytes_per_value(self) -> tuple[int, int]:
        """(bytes per array slot, bytes per computed value beyond its slot)."""
        return 8, self.value_bytes + self.F.p // 8

    def work_bytes(self, node: Node, shape: tuple[int, ...], fused: bool, operand_bytes: int) -> int:
        """Bytes of temporaries while ``node`` is computed on operands of ``shape`` (a reduction:
        its operand's; ``fused``: that operand is a fused map, whose own operands take
        ``operand_bytes``). F.map and F.reduce flatten each operand to a list and collect the
        results in one (8 bytes per element each, plus a flattened copy); a fused reduction does
        so on one piece at a time, whose products are new values (about 170 bytes per element of a
        piece at p = 24 by tracemalloc, values included; 80 bytes of lists are counted)."""
        slot, value = self.bytes_per_value()
        if fused:
            piece = largest_block(shape, tuple(node.attrs.get("axes", ())), self.chunk or PIECE_ELEMENTS)
            return piece * (80 + slot + value)
        return 8 * math.prod(shape) * (len(node.inputs) + 2)

    def apply(self, node: Node, args: list[Any]) -> Any:
        if node.id in self.fused:
            self.stats.add_gates("mpfr", node)
            return Deferred(node, args)
        if args and isinstance(args[0], Deferred):
            d = args[0]
            self.stats.add_gates("mpfr", node)
            try:
                return map_reduce(self.F, PRIMITIVES[d.node.prim].kernel, PRIMITIVES[node.prim].kernel, d.args,
                                  tuple(node.attrs["axes"]), self.chunk)
            except MapFailed as e:
                raise NamedError(named(d.node, e.error)) from None
        return self.rule(node, args)

    def rule(self, node: Node, args: list[Any]) -> Any:
        """``node``'s EVAL_RULES rule on mpfr arrays."""
        rule = EVAL_RULES.rule(node.prim)
        self.stats.add_gates("mpfr", node)
        return rule(self.F, node, args)

    def release(self, value: Any) -> None:
        """A value no node reads any more (an engine may reuse its memory)."""

    def result(self, value: Any, values: str) -> np.ndarray:
        """The caller's representation: object array of mpfr, (``values="float64"``) float64, or
        (``"native"``) this engine's own arrays (here object arrays of mpfr)."""
        return self.F.to_float64_array(value) if values == "float64" else value

    def close(self) -> None:
        """Release resources (a Dask cluster)."""


ENGINE_CLASSES: dict[str, Callable[..., MpfrEngine]] = {}
"""The fast and Dask engines, registered by tc0sim.interp.fast and tc0sim.interp.parallel (which
import this module; tc0sim.interp imports both, so they are always registered)."""


def _engine(
    engine: str, F: Format, stats: EvalStats, chunk_elements: int | None, workers: int | None, scheduler: str | None
) -> MpfrEngine:
    from tc0sim.fastfp import MAX_FAST_P, supports

    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "fast" and not supports(F.p):
        raise ConfigError(f"the fast engine supports p <= {MAX_FAST_P} (53 >= 2p + 2), got p={F.p}; use --engine mpfr or auto")
    if engine != "mpfr" and supports(F.p):
        return ENGINE_CLASSES["fast"](F, stats, chunk_elements)
    if workers is not None and workers < 0:
        raise ConfigError(f"workers={workers}: expected 0 (this process) or more")
    if workers or scheduler is not None:
        return ENGINE_CLASSES["dask"](F, stats, workers=workers, scheduler=scheduler, chunk_elements=chunk_elements)
    return MpfrEngine(F, stats, chunk_elements)


def largest_block(shape: tuple[int, ...], axes: tuple[int, ...], budget: int) -> int:
    """Elements of the largest block ``blocks`` cuts (the first: the others are no larger)."""
    first = next(blocks(shape, [i for i in range(len(shape)) if i not in axes], budget))
    return math.prod(len(range(*s.indices(n))) for s, n in zip(first, shape))


def peak_bytes(runner: MpfrEngine, live: list[Node], keep: set[int]) -> int:
    """An upper bound on the bytes of values ``run_nodes`` holds at once on ``runner``, from the
    shapes alone: it replays run_nodes' order and releases. A computed node's array costs a slot
    and a value per element; a copying move (concat, gather, pad, a reshape that numpy copies)
    only slots, as its values are its operand's objects; a view (ir.moves.VIEWS, a reshape of a
    C-contiguous array) nothing, but keeps its operand's array alive; a map fused into its
    reduction keeps its operands alive, and its reduction holds one piece of products
    (``work_bytes``). Plus the engine's reuse pool, at most what was freed."""
    runner.prepare(live, keep)
    slot, value = runner.bytes_per_value()
    last_use = {i: node.id for node in live for i in node.inputs}
    shapes = {node.id: node.shape for node in live}
    arrays: dict[int, set[int]] = {}  # node -> the arrays its value keeps alive (by owner id)
    dense: dict[int, bool] = {}  # node -> its value is a C-contiguous array
    cost: dict[int, int] = {}  # array owner -> bytes
    holders: dict[int, int] = {}  # array owner -> live values keeping it
    held = peak = freed = 0
    for node in live:
        row = PRIMITIVES[node.prim]
        moves = row.kernel is None and row.move is not None
        view = moves and (row.move in VIEWS or (row.move is reshape and dense[node.inputs[0]]))
        work = 0
        if node.id in runner.fused or view:
            arrays[node.id] = set().union(*(arrays[i] for i in node.inputs))
            dense[node.id] = view and row.move in (reshape, same_place) and dense[node.inputs[0]]
        else:
            arrays[node.id] = {node.id}
            dense[node.id] = True
            cost[node.id] = node.size * (slot if moves else slot + value)
            held += cost[node.id]
            if not moves and node.inputs:
                fused = node.inputs[0] in runner.fused
                operand_bytes = sum(cost[owner] for owner in arrays[node.inputs[0]]) if fused else 0
                shape = shapes[node.inputs[0]] if row.role == "reduction" else node.shape
                work = runner.work_bytes(node, shape, fused, operand_bytes)
        for owner in arrays[node.id]:
            holders[owner] = holders.get(owner, 0) + 1
        peak = max(peak, held + work + min(freed, runner.pool_bytes))
        for i in set(node.inputs):
            if last_use.get(i) == node.id and i not in keep:
                for owner in arrays.pop(i):
                    holders[owner] -= 1
                    if holders[owner] == 0:
                        held -= cost[owner]
                        freed += cost[owner]
    return peak


def evaluation_bytes(graph: Graph, p: int, engine: str = "auto", chunk_elements: int | None = None) -> int:
    """``peak_bytes`` of ``evaluate(graph, p, engine=engine)`` in this process (on Dask the
    same values are spread over the workers)."""
    graph = graph.flat()
    runner = _engine(engine, Format(p), EvalStats(), chunk_elements, None, None)
    return peak_bytes(runner, graph.live(), set(graph.outputs.values()))


def run_nodes(
    runner: MpfrEngine, live: list[Node], keep: set[int], given: Mapping[str, Any], stats: EvalStats
) -> dict[int, Any]:
    """Every live node in order on ``runner`` (prepared first); a value is released after its last reader unless
    it is in ``keep``. Returns the kept values; an arithmetic error is raised as a NamedError
    (prefixed with its node)."""
    runner.prepare(live, keep)
    last_use = {i: node.id for node in live for i in node.inputs}
    results: dict[int, Any] = {}
    for node in live:
        start = time.perf_counter()
        if node.prim == "input":
            results[node.id] = runner.entry(node, given[node.name])
        else:
            try:
                results[node.id] = runner.apply(node, [results[i] for i in node.inputs])
            except FpArithmeticError as e:
                raise NamedError(named(node, e)) from None
        stats.seconds[node.operator] = stats.seconds.get(node.operator, 0.0) + time.perf_counter() - start
        for i in set(node.inputs):
            if last_use.get(i) == node.id and i not in keep:
                runner.release(results.pop(i))
    return results


def evaluate(
    graph: Graph,
    p: int,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    scale: float = 1.0,
    engine: str = "auto",
    stats: EvalStats | None = None,
    chunk_elements: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    values: str = "mpfr",
) -> dict[str, np.ndarray]:
    """Evaluate every output at precision p; returns object arrays of F_p values (mpfr), or with
    ``values="float64"`` float64 arrays of the same values (NotRepresentableError if one is not),
    or with ``values="native"`` the engine's own arrays without conversion: float64 arrays from
    the fast engine (an object array of mpfr for an output with a value beyond binary64's normal
    range), object arrays of mpfr from the MPFR engines. ``Format.to_pairs`` takes both.

    ``engine`` is auto, fast or mpfr (same bits); ``stats`` (an EvalStats) is filled in;
    ``chunk_elements`` bounds the elements of a product tensor held at once (fast and parallel
    engines); ``workers`` (local Dask worker processes; 0 or None: this process) / ``scheduler``
    (the address of a running Dask cluster) run the MPFR engine on a Dask cluster.
    """
    graph = graph.flat()  # a shared body is evaluated at each of its calls
    F = Format(p)
    if values not in VALUES:
        raise ConfigError(f"values={values!r}: expected one of {', '.join(VALUES)}")
    stats = stats if stats is not None else EvalStats()
    given = dict(inputs or {})
    unknown = sorted(set(given) - set(graph.inputs))
    if unknown:
        raise ConfigError(f"unknown input(s) {', '.join(unknown)}; the graph takes {', '.join(graph.inputs)}")
    given.update({name: value for name, value in graph.defaults.items() if name not in given})
    missing = [name for name in graph.inputs if name not in given]
    if missing:
        drawn = random_inputs(graph, seed, scale)
        given.update({name: drawn[name] for name in missing})
    live = graph.live()
    keep = set(graph.outputs.values())
    runner = _engine(engine, F, stats, chunk_elements, workers, scheduler)
    stats.engine = runner.name
    try:
        try:
            results = run_nodes(runner, live, keep, given, stats)
        except NamedError as e:
            raise e.error from None
        return {name: runner.result(results[nid], values) for name, nid in graph.outputs.items()}
    finally:
        runner.close()
