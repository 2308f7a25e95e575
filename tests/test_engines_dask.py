"""The MPFR engine on a two-worker Dask cluster: same bits and same errors as the serial engine."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from tc0sim.fp import ExpOverflow, Format
from tc0sim.interp.evaluate import EvalStats, evaluate
from tc0sim.engines.dask.cluster import local_cluster
from tc0sim.engines.dask.wire import Pairs, aligned, float_terms, from_pairs, to_pairs
from tc0sim.engines.dask.worker import region_wire
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import BROADCAST, RESHAPE
from tc0sim.kinds import build

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    cluster = local_cluster(2)
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(autouse=True)
def every_node_on_the_cluster(monkeypatch):
    from tc0sim.engines.dask import engine as parallel

    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 1)


def pairs(out: dict, p: int) -> dict:
    return {name: Format(p).to_pairs(v) for name, v in out.items()}


@pytest.mark.parametrize("p, chunks", [(53, (40, 5000)), (113, (300,))])
def test_two_workers_give_the_serial_bits_for_any_blocking(scheduler, p: int, chunks: tuple[int, ...]) -> None:
    graph = build("attention", {"n": 12, "d": 8})
    inputs = {name: np.random.default_rng(1).standard_normal(graph.node(i).shape) * 0.5 for name, i in graph.inputs.items()}
    serial = pairs(evaluate(graph, p, inputs, engine="mpfr"), p)
    for chunk in chunks:
        stats = EvalStats()
        out = evaluate(graph, p, inputs, engine="mpfr", scheduler=scheduler, chunk_elements=chunk, stats=stats)
        assert pairs(out, p) == serial
        assert stats.engine == "mpfr-dask"


def test_errors_are_the_serial_engines(scheduler) -> None:
    b = Builder()
    x = b.input("x", (40,))
    with b.scope("op"):
        b.output("y", b.exp(b.mul(x, x)))
    values = np.full(40, 2.0)
    values[33] = 2.0**20
    outcomes = []
    for kw in ({}, {"scheduler": scheduler, "chunk_elements": 8}):
        with pytest.raises(ExpOverflow) as info:
            evaluate(b.graph, 30, {"x": values}, engine="mpfr", **kw)
        outcomes.append(str(info.value))
    assert outcomes[0] == outcomes[1] and "(element (33,))" in outcomes[0] and "node exp" in outcomes[0]


def exact(v) -> Fraction:
    return Fraction(*v.as_integer_ratio())


def hard_values(F: Format) -> np.ndarray:
    """F_p values with long significands, exact zeros in their expansion, and extreme binary64 exponents."""
    values = F.map("exp", F.asarray(np.random.default_rng(3).standard_normal(300) * 4))
    values[:6] = F.asarray(np.array([0.0, -0.0, 1.5, 2.0**-1022, -(2.0**1023) * 1.75, 5e-324 * 2**53]))
    return np.concatenate([values, F.map("div", F.asarray(np.arange(1.0, 41.0)), F.asarray(np.full(40, 3.0)))])


@pytest.mark.parametrize("p", [26, 30, 53, 54, 62, 64, 113, 200])
def test_float_terms_are_an_exact_expansion(p: int) -> None:
    F = Format(p)
    values = hard_values(F)
    terms = float_terms(F, values.tolist())
    assert terms is not None and len(terms) == -(-p // 53)
    sums = [sum((Fraction(t[i]) for t in terms), Fraction(0)) for i in range(values.size)]
    assert sums == [exact(v) for v in values.tolist()]


@pytest.mark.parametrize("p", [30, 53, 113])
@pytest.mark.parametrize("value", ["2^1100", "2^-1100", "2^-1000·(1 + 2^-100)"])
def test_values_beyond_binary64_leave_the_expansion_and_round_trip_exactly(p: int, value: str) -> None:
    F = Format(p)
    big = F._wide
    v = {"2^1100": big.mul_2exp(F.one, 1100), "2^-1100": big.mul_2exp(F.one, -1100),
         "2^-1000·(1 + 2^-100)": big.mul_2exp(big.add(F.one, big.mul_2exp(F.one, -100)), -1000)}[value]
    v = F.asarray(np.array([v], dtype=object))
    values = np.concatenate([hard_values(F)[:20], v])
    if p < 100 and value.startswith("2^-1000"):
        assert float_terms(F, values.tolist()) is not None  # rounded to p bits it is 2^-1000
    else:
        assert float_terms(F, values.tolist()) is None
    ms, es = to_pairs(F, values)
    assert [sum(Fraction(int(m[i])) * Fraction(2) ** int(e[i]) for m, e in zip(ms, es)) for i in range(values.size)] == \
        [exact(x) for x in values.tolist()]
    assert [exact(x) for x in from_pairs(F, ms, es).tolist()] == [exact(x) for x in values.tolist()]


@pytest.mark.parametrize("p", [30, 53, 64, 113, 200])
def test_pairs_round_trip(p: int) -> None:
    F = Format(p)
    values = np.concatenate([F.asarray(np.array([0.0, 1.5, -3.0e-300, 7.0e300, 1 / 3])), hard_values(F)])
    back = from_pairs(F, *to_pairs(F, values))
    assert [exact(v) for v in back.tolist()] == [exact(v) for v in values.tolist()]


def test_blocks_with_different_numbers_of_terms_assemble_and_align() -> None:
    F = Format(113)
    fast = hard_values(F)[:10]
    slow = F.asarray(np.array([F._wide.mul_2exp(F.one, 2000)] * 10, dtype=object))
    places = [((slice(0, 10),), (slice(0, 10),), (10,)), ((slice(10, 20),), (slice(0, 10),), (10,))]
    whole = Pairs(*region_wire((20,), places, [to_pairs(F, fast), to_pairs(F, slow)]))
    assert len(to_pairs(F, fast)[0]) == 3 and len(to_pairs(F, slow)[0]) == 1 and len(whole.m) == 3
    expected = [exact(v) for v in np.concatenate([fast, slow]).tolist()]
    assert [exact(v) for v in from_pairs(F, whole.m, whole.e).tolist()] == expected
    one_term = Pairs(*to_pairs(F, slow))
    a, b = aligned([one_term, whole])
    assert len(a.m) == len(b.m) == 3
    assert [exact(v) for v in from_pairs(F, a.m, a.e).tolist()] == expected[10:]


@pytest.mark.parametrize("p", [53, 113])
def test_blocks_beyond_binary64_give_the_serial_bits(scheduler, p: int) -> None:
    """exp of large inputs is an F_p value beyond binary64's range (F_53's range is far wider):
    those blocks travel as exact pairs, the others as float64 expansions, then one ⊕ and one div."""
    b = Builder()
    x = b.input("x", (64,))
    with b.scope("op"):
        y = b.exp(x)
        b.output("s", b.sum(b.reshape(y, (8, 8)), axis=1))
        b.output("q", b.div(y, b.broadcast(b.sum(y, axis=0), (64,))))
    values = np.random.default_rng(4).standard_normal(64)
    values[40:48] = 800.0 + np.arange(8)
    serial = pairs(evaluate(b.graph, p, {"x": values}, engine="mpfr"), p)
    assert pairs(evaluate(b.graph, p, {"x": values}, engine="mpfr", scheduler=scheduler, chunk_elements=8), p) == serial


@pytest.mark.parametrize("p", [53, 113])
def test_inputs_kept_as_pairs_through_wiring_give_the_serial_bits(scheduler, p: int) -> None:
    """float64 inputs at p >= 53 stay [m, e] pairs in the client through wiring (pad, reshape,
    broadcast) and cluster nodes; extreme float64 values (subnormal, largest, -0) included."""
    b = Builder()
    x, y = b.input("x", (6,)), b.input("y", (3, 8))
    padded = b.reshape(b.pad(x, [(1, 1)]), (8, 1))
    out = b.sum(b.mul(b.broadcast(padded, (8, 3)), b.transpose(y, (1, 0))), axis=0)
    b.output("z", b.add(out, b.reshape(b.sum(y, axis=1), (3,))))
    b.output("w", b.div(x, b.broadcast(b.sum(x, axis=0), (6,))))
    values = {"x": np.array([5e-324, -0.0, 1.7e308, 1.5, -2.0**-1060, 3.0]), "y": np.random.default_rng(2).standard_normal((3, 8))}
    values["x"][2] = 1.5e300
    serial = pairs(evaluate(b.graph, p, values, engine="mpfr"), p)
    assert pairs(evaluate(b.graph, p, values, engine="mpfr", scheduler=scheduler), p) == serial


def test_float_pairs_are_exact() -> None:
    from tc0sim.engines.dask.wire import float_pairs

    x = np.array([5e-324, -0.0, 1.7976931348623157e308, -1.5, 2.0**-1060, 0.1])
    m, e = float_pairs(x)
    assert [Fraction(int(a)) * Fraction(2) ** int(b) for a, b in zip(m, e)] == [Fraction(v) for v in x.tolist()]


def test_a_cluster_error_before_a_client_error_is_the_one_raised(scheduler, monkeypatch) -> None:
    """exp overflows on the cluster; a later node in the client divides by zero. The serial
    engine stops at exp, so the Dask engine must too (its tasks finish after the client's node)."""
    from tc0sim.engines.dask import engine as parallel

    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 32)
    b = Builder()
    x, z = b.input("x", (64,)), b.input("z", (2,))
    with b.scope("first"):
        y = b.exp(x)
    with b.scope("second"):
        q = b.div(b.constant(1), z)
    b.output("y", y)
    b.output("q", q)
    values = {"x": np.full(64, 2.0), "z": np.zeros(2)}
    values["x"][50] = 2.0**40
    messages, stats = [], EvalStats()
    for kw in ({}, {"scheduler": scheduler, "stats": stats}):
        with pytest.raises(ExpOverflow) as info:
            evaluate(b.graph, 30, values, engine="mpfr", **kw)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "node exp" in messages[0] and "(element (50,))" in messages[0]
    assert stats.replayed == 1


def test_small_nodes_reading_cluster_values_run_there_with_the_serial_bits(scheduler, monkeypatch) -> None:
    """With the default threshold, softmax-like row sums (small) of a large exp (on the cluster)
    and a broadcast division run as whole-node tasks; bits and per-operator seconds are kept."""
    from tc0sim.engines.dask import engine as parallel

    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 1 << 14)
    b = Builder()
    x = b.input("x", (64, 512))
    with b.scope("scores"):
        a = b.exp(x)
    with b.scope("norm"):
        inv = b.div(b.constant(1), b.sum(b.reshape(b.sum(a, axis=1), (8, 8)), axis=1))
        b.output("out", b.mul(b.reshape(inv, (8, 1)), b.reshape(b.sum(a, axis=1), (8, 8))))
    values = {"x": np.random.default_rng(5).standard_normal((64, 512))}
    for p in (53, 113):
        serial = pairs(evaluate(b.graph, p, values, engine="mpfr"), p)
        stats = EvalStats()
        assert pairs(evaluate(b.graph, p, values, engine="mpfr", scheduler=scheduler, stats=stats), p) == serial
        assert stats.replayed == 0 and stats.seconds.get("scores", 0) > 0 and stats.seconds.get("norm", 0) > 0


def _blocked(value: np.ndarray, rows: int):
    """``value`` (integers) held as row blocks of at most ``rows`` rows, the Wires standing in for futures."""
    from tc0sim.engines.dask.cluster import Remote

    n = value.shape[0]
    indexes = [(slice(i, min(i + rows, n)), *(slice(0, d) for d in value.shape[1:])) for i in range(0, n, rows)]
    parts = [((value[ix].copy(),), (np.zeros(value[ix].shape, dtype=np.int64),)) for ix in indexes]
    return Remote(parts, (value.shape, indexes, [value[ix].shape for ix in indexes]), value.shape, 0)


@pytest.mark.parametrize("rows", [1, 3, 7, 20])
def test_a_task_reads_only_the_blocks_of_its_region_through_reshape_and_broadcast(rows: int) -> None:
    """Regions of values held as blocks, after a unit-axis reshape and a broadcast (seen without
    computing anything), equal numpy's slices of the reshaped and broadcast array."""
    from tc0sim.ir.graph import Node

    value = np.arange(20 * 6, dtype=np.int64).reshape(20, 6)
    held = _blocked(value, rows)
    reshaped = held.moved(Node(1, RESHAPE, (20, 1, 6), (0,), {"shape": (20, 1, 6)}, (), "r"))
    wide = reshaped.moved(Node(2, BROADCAST, (2, 20, 5, 6), (1,), {"shape": (2, 20, 5, 6)}, (), "b"))
    expected = np.broadcast_to(value.reshape(20, 1, 6), (2, 20, 5, 6))
    for lo, hi in [(0, 20), (4, 9), (19, 20), (6, 7)]:
        index = (slice(None), slice(lo, hi), slice(1, 4), slice(None))
        key, shape, origin, region, places, parts = wide.operand(index)
        assert len(parts) == len({i // rows for i in range(lo, hi)}), "only the blocks the rows lie in"
        m = region_wire(region, places, parts)[0][0]
        assert origin == (0, lo, 0, 0) and shape == (2, 20, 5, 6)
        assert np.array_equal(np.broadcast_to(m, expected[index].shape), expected[index])
    assert held.moved(Node(3, RESHAPE, (6, 20), (0,), {"shape": (6, 20)}, (), "t")) is None, "not a unit-axis reshape"


@pytest.mark.parametrize("map_prim, reduce_prim, axes", [
    ("mul", "sum", (1,)), ("mul", "sum", (0, 2)), ("mul", None, ()), (None, "sum", (2,)), ("div", "prod", (0,)),
])
def test_a_block_computed_in_pieces_gives_the_bits_of_the_whole(monkeypatch, map_prim, reduce_prim, axes) -> None:
    """run_block cuts its block into pieces of PIECE_ELEMENTS (here 7, so most pieces are ragged;
    ``b`` travels unbroadcast); every output element is still the serial Format operation's."""
    from tc0sim.engines import blocking as evaluate_module
    from tc0sim.engines.dask import worker as parallel

    monkeypatch.setattr(evaluate_module, "PIECE_ELEMENTS", 7)
    F = Format(53)
    rng = np.random.default_rng(5)
    a = F.asarray(rng.standard_normal((5, 6, 4)))
    b = F.asarray(rng.standard_normal((1, 6, 4)) + 3.0)
    b_full = np.broadcast_to(b, a.shape)
    index = (slice(1, 5), slice(None), slice(None))
    operands = [((name,), a.shape, None, None, None, [to_pairs(F, value)]) for name, value in (("a", a), ("b", b))]
    if map_prim is None:
        operands = operands[:1]
    ms, es = parallel.run_block(53, ("test", "op"), map_prim, reduce_prim, axes, operands, index)
    values = F.map(map_prim, a[index], b_full[index]) if map_prim else a[index]
    expected = F.reduce(reduce_prim, values, axes) if reduce_prim else values
    assert F.to_pairs(from_pairs(F, ms, es)) == F.to_pairs(expected)


def test_the_local_clusters_workers_run_with_the_quiet_settings(scheduler) -> None:
    """The settings reach the worker processes (a Nanny passes the parent's config to its worker)."""
    import dask

    from tc0sim.engines.dask.cluster import QUIET_WORKERS

    with distributed.Client(scheduler) as client:
        seen = client.run(lambda: {key: dask.config.get(key) for key in QUIET_WORKERS})
    assert len(seen) == 2 and all(settings == QUIET_WORKERS for settings in seen.values())


@pytest.mark.parametrize("address, message", [
    ("nonsense", "not a Dask scheduler address"),
    ("tcp://127.0.0.1:notaport", "not a Dask scheduler address"),
    ("foo://x:1", "not a Dask scheduler address"),
    ("tcp://no.such.host.invalid:8786", "cannot reach the Dask scheduler"),
])
def test_a_malformed_scheduler_address_is_a_config_error(address: str, message: str) -> None:
    from tc0sim.errors import ConfigError

    graph = build("matmul", {"n1": 2, "d": 2, "n2": 2})
    with pytest.raises(ConfigError, match=message):
        evaluate(graph, 53, engine="mpfr", scheduler=address)


def test_an_unreachable_scheduler_or_one_without_workers_is_a_config_error(monkeypatch) -> None:
    """Without the worker check, every task would wait for a worker forever."""
    import logging
    import socket

    from tc0sim.errors import ConfigError
    from tc0sim.engines.dask import cluster as parallel

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 2)
    graph = build("matmul", {"n1": 2, "d": 2, "n2": 2})
    with socket.socket() as closed:  # a free port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        evaluate(graph, 53, engine="mpfr", scheduler=f"tcp://127.0.0.1:{port}")
    with distributed.LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=logging.CRITICAL) as empty:
        with pytest.raises(ConfigError, match="has no worker"):
            evaluate(graph, 53, engine="mpfr", scheduler=empty.scheduler_address)


def test_a_local_cluster_that_cannot_start_is_one_clear_error(monkeypatch) -> None:
    from tc0sim.engines.dask import cluster as parallel

    def failing(workers: int):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(parallel, "local_cluster", failing)
    graph = build("matmul", {"n1": 2, "d": 2, "n2": 2})
    with pytest.raises(parallel.ClusterStartError, match="cannot start a local Dask cluster of 3 workers .*--workers 0"):
        evaluate(graph, 53, engine="mpfr", workers=3)


def test_workers_zero_evaluates_in_this_process_and_a_negative_count_is_refused(monkeypatch) -> None:
    from tc0sim.errors import ConfigError
    from tc0sim.engines.dask import cluster as parallel

    def no_cluster(workers: int):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(parallel, "local_cluster", no_cluster)
    graph = build("matmul", {"n1": 2, "d": 2, "n2": 2})
    stats = EvalStats()
    evaluate(graph, 53, engine="mpfr", workers=0, stats=stats)
    assert stats.engine == "mpfr"
    with pytest.raises(ConfigError, match="workers=-1"):
        evaluate(graph, 53, engine="mpfr", workers=-1)


class _FakeFuture:
    """A submitted task that finishes when the test says so."""

    def __init__(self, key: str) -> None:
        self.key, self.callbacks = key, []

    def add_done_callback(self, fn) -> None:
        self.callbacks.append(fn)

    def finish(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for fn in callbacks:
            fn(self)


def test_the_feeder_keeps_each_worker_two_deep_lets_a_free_worker_take_the_others_share_and_follows_the_rows() -> None:
    """Worker a finishes everything it is given at once, b nothing: a does its own half of the
    first node, then takes b's share from its end; of the second node's row blocks, a first does
    those whose rows it computed (0-3 and 6-7, not its static half 0-3 then b's from the end),
    then takes those of b's rows, from the end."""
    from tc0sim.engines.dask.cluster import TASKS_IN_FLIGHT, Feeder, Remote, Task

    submitted: list[tuple[str, str]] = []
    futures_made: dict[str, _FakeFuture] = {}

    def submit(task, address):
        key = f"{task.node}-{task.slot}"
        submitted.append((key, address))
        futures_made[key] = _FakeFuture(key)
        return futures_made[key]

    feeder = Feeder(["a", "b"], submit)
    rows = [(slice(i, i + 1), slice(0, 4)) for i in range(8)]
    first: list = [None] * 8
    feeder.put([Task(None, "first", [], (), (), i * 2 // 8, first, i) for i in range(8)])
    assert submitted == [("first-0", "a"), ("first-4", "b"), ("first-1", "a"), ("first-5", "b")]
    assert TASKS_IN_FLIGHT == 2
    held = Remote(first, ((8, 4), rows, [(1, 4)] * 8), (8, 4), 0)
    second: list = [None] * 8
    feeder.put([Task(None, "second", [(held, rows[i])], (), (), i * 2 // 8, second, i) for i in range(8)])
    while True:  # a finishes its oldest task as soon as it has one; b never finishes
        mine = [k for k, addr in submitted if addr == "a" and futures_made[k].callbacks]
        if not mine:
            break
        futures_made[mine[0]].finish()
    on = {k: addr for k, addr in submitted}
    assert [on[f"first-{i}"] for i in range(8)] == ["a", "a", "a", "a", "b", "b", "a", "a"]
    assert [k for k, addr in submitted if k.startswith("second")] == [f"second-{i}" for i in (0, 1, 2, 3, 6, 7, 5, 4)]
    assert all(on[f"second-{i}"] == "a" for i in range(8))
    assert first[7] is futures_made["first-7"] and None not in first
    assert not feeder.failed


def test_a_submission_that_raises_marks_the_feeder_failed_and_stops_the_wait() -> None:
    """A closed client raises on submit: the feeder stops feeding and ``wait`` says so (the
    engine then replays the evaluation serially) instead of waiting for a future forever."""
    from tc0sim.engines.dask.cluster import Feeder, Task

    def submit(task, address):
        raise RuntimeError("client closed")

    feeder = Feeder(["a", "b"], submit)
    out: list = [None] * 3
    feeder.put([Task(None, "node", [], (), (), 0, out, i) for i in range(3)])
    assert feeder.failed and feeder.wait(out) is False and out == [None] * 3


def test_the_feeder_places_a_block_by_the_rows_it_reads_not_by_a_value_every_block_reads_whole() -> None:
    """A block of S·V reads one row block of S (computed on a) and all of V (computed on b,
    more elements): it goes to a, since every block reads V whole and V says nothing about
    where a block belongs. A block reading only whole values goes to its home share."""
    from tc0sim.engines.dask.cluster import Feeder, Remote, Task

    feeder = Feeder(["a", "b"], lambda task, address: None)
    rows = [(slice(i, i + 1), slice(0, 4)) for i in range(8)]
    s = Remote([_FakeFuture(f"s{i}") for i in range(8)], ((8, 4), rows, [(1, 4)] * 8), (8, 4), 0)
    v_rows = [(slice(i, i + 2), slice(0, 64)) for i in range(0, 4, 2)]
    v = Remote([_FakeFuture(f"v{i}") for i in range(2)], ((4, 64), v_rows, [(2, 64)] * 2), (4, 64), 1)
    feeder.where = {f"s{i}": "a" if i < 4 else "b" for i in range(8)} | {"v0": "b", "v1": "b"}

    def task(reads, home):
        t = Task(None, "sv", reads, (), (), home, [None], 0)
        t.operands = [remote.operand(index) for remote, index in reads]
        return t

    assert feeder._prefer(task([(s, rows[1]), (v, None)], 1)) == "a"
    assert feeder._prefer(task([(s, rows[6]), (v, None)], 0)) == "b"
    assert feeder._prefer(task([(v, None)], 0)) == "a"
    assert feeder._prefer(task([(v, None)], 1)) == "b"
