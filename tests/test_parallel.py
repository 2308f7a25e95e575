"""The MPFR engine on a two-worker Dask cluster: same bits and same errors as the serial engine."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tc0sim.fp import ExpOverflow, Format
from tc0sim.interp.evaluate import EvalStats, evaluate
from tc0sim.interp.parallel import from_pairs, to_pairs
from tc0sim.ir.graph import Builder
from tc0sim.kinds import build

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(autouse=True)
def every_node_on_the_cluster(monkeypatch):
    from tc0sim.interp import parallel

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


@pytest.mark.parametrize("p", [30, 53, 64, 200])
def test_pairs_round_trip(p: int) -> None:
    F = Format(p)
    values = F.asarray(np.array([0.0, 1.5, -3.0e-300, 7.0e300, 1 / 3]))
    back = from_pairs(F, *to_pairs(F, values))
    assert F.to_pairs(back) == F.to_pairs(values)


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
    from fractions import Fraction

    from tc0sim.interp.parallel import float_pairs

    x = np.array([5e-324, -0.0, 1.7976931348623157e308, -1.5, 2.0**-1060, 0.1])
    m, e = float_pairs(x)
    assert [Fraction(int(a)) * Fraction(2) ** int(b) for a, b in zip(m, e)] == [Fraction(v) for v in x.tolist()]
