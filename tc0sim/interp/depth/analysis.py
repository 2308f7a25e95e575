"""The depth analysis driver: every live node's rule in graph order, shared bodies once per signature (docs/dag.md).

``depth`` runs the rules of ``DEPTH_RULES`` over the live nodes; a ``call`` node's body is analysed
(by the same driver, in a child context) once per argument signature and its result states
substituted (``calls``). A rule that would exceed the memory budget refuses with
``DepthBudgetError`` naming the node, or, when the caller allows it, the node takes the node-level
union of its operands (``upper_bound``) and the result says it is not exact.
"""

from __future__ import annotations

from collections.abc import Mapping

from tc0sim.errors import DepthBudgetError
from tc0sim.interp.depth.calls import Results, classes, parameter_states, result_states
from tc0sim.interp.depth.result import Body, DepthResult
from tc0sim.interp.depth.rules import DEPTH_RULES, upper_bound
from tc0sim.interp.depth.state import DEFAULT_MEMORY_BUDGET, ZERO_ID, Context, State
from tc0sim.ir.dag import Function, Graph, Node, paused_gc
from tc0sim.ir.primitives import CALL, RESULT, SYMBOLS
from tc0sim.ir.vectors import Number, maximal


def depth(graph: Graph, memory_budget: int = DEFAULT_MEMORY_BUDGET, allow_upper_bound: bool = False) -> DepthResult:
    """Exact critical depth of ``graph`` over its live nodes.

    A step that would take the factored states over ``memory_budget`` bytes raises DepthBudgetError
    naming the node — unless ``allow_upper_bound``: then that node takes the node-level union of its
    operands, and the result says it is an upper bound (``exact`` False, ``inexact_reasons``).
    A call of a shared body costs one analysis of the body per argument signature, however often
    it is called (``tc0sim.interp.depth.calls``)."""
    with paused_gc():
        ctx = Context(memory_budget, allow_upper_bound)
        states = _run(graph, ctx, {})
        ids = {i for out in set(graph.outputs.values()) for i in states[out].ids()}
        critical = maximal({v for i in ids for v in ctx.sets[i]})
        return DepthResult(graph, states, critical, ctx.sets, not ctx.reasons, ctx.reasons, ctx.fallbacks, ctx.calls)


def _run(graph: Graph, ctx: Context, params: Mapping[int, State]) -> dict[int, State]:
    """The state of every live node (``params``: the given states of a body's parameters)."""
    states: dict[int, State] = {}
    for node in graph.live():
        if node.id in params:
            states[node.id] = params[node.id]
            continue
        ctx.node = node
        ins = [states.get(i) for i in node.inputs]  # None: an argument of a call that no used result reads
        rule = DEPTH_RULES[node.prim]
        try:
            state = rule(node, ins, [graph.nodes[i].shape for i in node.inputs], ctx)
        except DepthBudgetError as error:
            if not ctx.allow_upper_bound:
                raise
            state = upper_bound(node, ins, ctx)
            ctx.fallbacks.add(node.id)
            ctx.reasons.append(f"{error}; node-level union used")
        ctx.kept += state.nbytes
        states[node.id] = state
    return states


def _call(node: Node, ins: list[State | None], shapes: list[tuple[int, ...]], ctx: Context) -> Results:
    """The depth rule of ``call``: the states of its results, its body's (analysed once per
    signature) with the arguments' sets substituted for the argument classes. An argument no used
    result reads is not live: it counts as depth 0."""
    ins = [ctx.uniform(len(shape), ZERO_ID) if state is None else state for state, shape in zip(ins, shapes)]
    fn: Function = node.attrs["fn"]
    signature, sets = classes(ins)
    key = (fn, signature)
    body = ctx.bodies.get(key)
    if body is None:
        body = ctx.bodies[key] = _analyse_body(fn, ins, sets, ctx)
    ctx.calls[node.id] = (body, sets)
    return Results(result_states(fn, body, sets, ctx))


def _result(node: Node, ins: list[Results], shapes: list[tuple[int, ...]], ctx: Context) -> State:
    """The depth rule of ``result``: the state of result ``index`` of the call it reads."""
    return ins[0][node.attrs["index"]]


DEPTH_RULES[CALL] = _call
DEPTH_RULES[RESULT] = _result


def _analyse_body(fn: Function, ins: list[State], sets: tuple[int, ...], ctx: Context) -> Body:
    """One analysis of a body with symbolic arguments (one extra coordinate per argument class)."""
    inner = ctx.child(len(SYMBOLS) + len(sets))
    states = _run(fn.graph, inner, parameter_states(fn, ins, sets, inner))
    ctx.kept = inner.kept
    ctx.reasons.extend(f"in shared {fn.name}: {r}" for r in inner.reasons)
    return Body(DepthResult(fn.graph, states, [], inner.sets, not inner.reasons, inner.reasons, inner.fallbacks, inner.calls))


def depth_numeric(graph: Graph, values: Mapping[str, Number]) -> tuple[Number, list[Node]]:
    """``depth(graph).at(values)``: the depth as one number for concrete symbol values, and its path."""
    return depth(graph).at(values)
