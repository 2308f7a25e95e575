"""The engines as one table: ``ENGINES``, ``plan`` (the choice of engine, workers and budget the
CLI and the API share) and an engine added by one module plus one ``ENGINES`` entry."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tc0sim import engines
from tc0sim.cli.main import main
from tc0sim.engines import ENGINES, Plan, choices, plan
from tc0sim.engines.base import EvalStats, NamedError, entry, run_nodes
from tc0sim.engines.mpfr import EVAL_RULES
from tc0sim.errors import BudgetError, ConfigError
from tc0sim.fp import Format
from tc0sim.interp.evaluate import evaluate as legacy_evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Graph, Node
from tc0sim.modelfile import load_model

MATMUL = Path(__file__).resolve().parents[1] / "examples" / "matmul.yaml"


def matmul() -> Graph:
    return load_model(MATMUL).build(None)


# --- an engine added by one module and one ENGINES entry ----------------------------------------


class _ToyRun:
    """Applies the reference rules node by node, counting its gates as 'toy'."""

    def __init__(self, F: Format, stats: EvalStats) -> None:
        self.F, self.stats = F, stats

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        pass

    def entry(self, node: Node, value: Any) -> Any:
        return entry(self.F, node, value)

    def apply(self, node: Node, args: list[Any]) -> Any:
        self.stats.add_gates("toy", node)
        return EVAL_RULES.rule(node.prim)(self.F, node, args)

    def release(self, value: Any) -> None:
        pass

    def result(self, value: Any, values: str) -> np.ndarray:
        return self.F.to_float64_array(value) if values == "float64" else value

    def close(self) -> None:
        pass


def _toy_module() -> types.ModuleType:
    """The whole engine: a module with name, rate, supports, memory_bytes and evaluate."""
    toy = types.ModuleType("toy_engine")
    toy.name = "toy"
    toy.rate = 1e6
    toy.supports = lambda p, graph=None: None if p <= 64 else f"the toy engine supports p <= 64, got p={p}"
    toy.memory_bytes = lambda graph, p, chunk=None: 1234

    def evaluate(
        graph: Graph, inputs: Mapping[str, Any], p: int, *, stats: EvalStats, chunk: int | None = None,
        workers: int | None = None, scheduler: str | None = None, values: str = "mpfr", progress=None,
    ) -> dict[str, np.ndarray]:
        run = _ToyRun(Format(p), stats)
        try:
            results = run_nodes(run, graph.live(), set(graph.outputs.values()), inputs, stats, progress)
        except NamedError as e:
            raise e.error from None
        return {name: run.result(results[nid], values) for name, nid in graph.outputs.items()}

    toy.evaluate = evaluate
    return toy


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    module = _toy_module()
    monkeypatch.setitem(ENGINES, module.name, module)
    yield module


def test_a_new_engine_runs_an_example_through_the_api(toy) -> None:
    graph = matmul()
    chosen = plan(graph, 53, "toy", max_memory=10**6)
    held = 8 * (4 * 4 + 4 * 8)  # the caller's float64 inputs X[4, 4] and Y[4, 8], besides the engine's 1234
    assert chosen == Plan("toy", 53, bytes=1234 + held, gates=None)
    assert chosen.as_dict() == {"engine": "toy", "p": 53, "workers": None, "scheduler": None, "chunk": None,
                                "bytes": 1234 + held, "gates": None, "seconds": None}
    stats = EvalStats()
    got = engines.evaluate(graph, {}, chosen, seed=3, stats=stats)
    reference = legacy_evaluate(graph, 53, {}, seed=3, engine="mpfr")
    F = Format(53)
    assert {k: F.to_pairs(v) for k, v in got.items()} == {k: F.to_pairs(v) for k, v in reference.items()}
    assert stats.engine == "toy" and stats.gates == {"toy": size(graph).total}
    assert legacy_evaluate(graph, 53, {}, seed=3, engine="toy")["out"].tolist() == got["out"].tolist()


def test_a_new_engine_is_planned_like_the_others(toy) -> None:
    graph = matmul()
    with pytest.raises(ConfigError, match="the toy engine supports p <= 64, got p=80; use --engine mpfr or auto"):
        plan(graph, 80, "toy")
    with pytest.raises(BudgetError, match="needs about 1,618 bytes, above the budget of 1,000 bytes"):  # 1234 + 8·48 inputs
        plan(graph, 53, "toy", max_memory=1000)
    with pytest.raises(ConfigError, match="--workers applies to the MPFR engine; at p=53 the toy engine is the toy one"):
        plan(graph, 53, "toy", workers=2)
    assert plan(graph, 60).engine == "mpfr", "auto still takes the first engine that supports p"


def test_a_new_engine_runs_an_example_through_the_cli(toy, tmp_path: Path) -> None:
    outputs = {}
    for engine in ("toy", "mpfr"):
        out = tmp_path / f"{engine}.json"
        result = CliRunner().invoke(main, ["eval", str(MATMUL), "-p", "53", "--engine", engine, "--output", str(out), "--stats"])
        assert result.exit_code == 0, result.output
        assert f"engine: {engine}; gates by engine: {engine} {size(matmul()).total:,}" in result.output
        outputs[engine] = json.loads(out.read_text())["outputs"]
    assert outputs["toy"] == outputs["mpfr"]
    bad = CliRunner().invoke(main, ["eval", str(MATMUL), "-p", "80", "--engine", "toy", "--output", str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "error: the toy engine supports p <= 64, got p=80" in bad.output
    unknown = CliRunner().invoke(main, ["eval", str(MATMUL), "--engine", "gpu", "--output", str(tmp_path / "x.json")])
    assert unknown.exit_code == 2 and "'toy'" in unknown.output  # the choices (--help names them without importing engines)


def test_the_engine_choices_are_auto_and_the_table(tmp_path: Path) -> None:
    assert choices() == ("auto", "fast", "mpfr", "mpfr-dask")
    bad = CliRunner().invoke(main, ["eval", str(MATMUL), "--engine", "toy", "--output", str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "'toy' is not one of 'auto', 'fast', 'mpfr', 'mpfr-dask'" in bad.output


# --- plan: the choice of engine and workers ------------------------------------------------------


@pytest.mark.parametrize("p, engine, workers, scheduler, expected", [
    (24, "auto", None, None, ("fast", None, None)),
    (25, "fast", None, None, ("fast", None, None)),
    (26, "auto", None, None, ("fast", None, None)),
    (53, "auto", None, None, ("fast", None, None)),
    (54, "auto", None, None, ("mpfr", None, None)),
    (24, "mpfr", None, None, ("mpfr", None, None)),
    (24, "mpfr", 2, None, ("mpfr-dask", 2, None)),
    (64, "auto", 0, None, ("mpfr", None, None)),
    (53, "auto", 0, None, ("fast", None, None)),
    (24, "fast", 0, None, ("fast", None, None)),
    (64, "auto", None, "tcp://127.0.0.1:1", ("mpfr-dask", None, "tcp://127.0.0.1:1")),
    (53, "mpfr-dask", None, None, ("mpfr-dask", 8, None)),
    (53, "mpfr-dask", 3, None, ("mpfr-dask", 3, None)),
])
def test_plan_chooses_the_engine_and_workers(monkeypatch, p, engine, workers, scheduler, expected) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    chosen = plan(matmul(), p, engine, workers, scheduler, cluster_from=None)
    assert (chosen.engine, chosen.workers, chosen.scheduler) == expected


@pytest.mark.parametrize("p, engine, workers, scheduler, message", [
    (53, "gpu", None, None, "unknown engine 'gpu'; expected one of auto, fast, mpfr, mpfr-dask"),
    (54, "fast", None, None, "the fast engine supports 2 <= p <= 53 (p-bit values are float64 values), got p=54; use --engine mpfr or auto"),
    (53, "auto", 2, None, "--workers applies to the MPFR engine; at p=53 the auto engine is the fast one (add --engine mpfr)"),
    (24, "auto", 2, None, "--workers applies to the MPFR engine; at p=24 the auto engine is the fast one (add --engine mpfr)"),
    (24, "fast", None, "tcp://h:1", "--scheduler applies to the MPFR engine; at p=24 the fast engine is the fast one"),
    (53, "mpfr", 2, "tcp://h:1", "--workers starts a local cluster and --scheduler uses yours: give one of them"),
    (53, "mpfr", -1, None, "workers=-1: expected 0 (this process) or more"),
    (53, "mpfr-dask", 0, None, "the mpfr-dask engine runs on a Dask cluster"),
])
def test_plan_refuses_what_no_engine_does(p, engine, workers, scheduler, message) -> None:
    with pytest.raises(ConfigError) as info:
        plan(matmul(), p, engine, workers, scheduler)
    assert message in str(info.value)


def test_a_large_graph_gets_a_local_cluster_within_the_budget_only_when_asked(monkeypatch) -> None:
    """By default a graph of any size is evaluated in this process (a local cluster was measured
    up to 10 times slower on a loaded 2-core machine). Opted in with ``cluster_from``: one worker
    per core from that many gates on, as many as the spare bytes hold (each worker charged
    LOCAL_WORKER_BYTES), none below two."""
    from tc0sim.engines.dask import LOCAL_WORKER_BYTES as each

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    graph = matmul()
    serial = plan(graph, 64, max_memory=10**12).bytes
    assert serial == ENGINES["mpfr"].memory_bytes(graph, 64, None) + 8 * (4 * 4 + 4 * 8)  # and the float64 inputs
    big = 10**7
    assert plan(graph, 64, gates=10**12, max_memory=10**15).engine == "mpfr"
    assert plan(graph, 64, gates=big - 1, cluster_from=big).engine == "mpfr"
    chosen = plan(graph, 64, gates=big, max_memory=serial + 5 * each, cluster_from=big)
    assert (chosen.engine, chosen.workers, chosen.bytes) == ("mpfr-dask", 5, serial + 5 * each)
    assert plan(graph, 64, gates=big, max_memory=serial + 2 * each - 1, cluster_from=big).engine == "mpfr"
    assert plan(graph, 64, gates=big, cluster_from=None).engine == "mpfr"
    with pytest.raises(BudgetError, match=r"evaluating M \(160 gates at p=64\) on 4 local workers"):
        plan(graph, 64, workers=4, max_memory=serial + 3 * each, label="M")


# --- progress -----------------------------------------------------------------------------------

@pytest.mark.parametrize("example, p, engine", [
    ("matmul.yaml", 24, "fast"), ("matmul.yaml", 53, "mpfr"), ("conv2d.yaml", 24, "fast"), ("conv2d.yaml", 60, "mpfr"),
    ("attention.yaml", 24, "fast"), ("layernorm.yaml", 30, "mpfr"),
])
def test_the_progress_hook_counts_every_gate_once(example: str, p: int, engine: str) -> None:
    """The hook is told positive gate counts whose running total rises to the graph's size; for
    matmul X[4, 4]·Y[4, 8] that is 4·4·8 products and 4·8 sums (counted by hand)."""
    graph = load_model(MATMUL.parent / example).build(None)
    told: list[int] = []
    engines.evaluate(graph, None, plan(graph, p, engine), progress=told.append)
    assert told and all(isinstance(g, int) and g > 0 for g in told)
    assert sum(told) == size(graph).total
    if example == "matmul.yaml":
        assert sum(told) == 4 * 4 * 8 + 4 * 8


def test_the_progress_hook_may_stop_an_evaluation() -> None:
    class Stop(Exception):
        pass

    def stop(gates: int) -> None:
        raise Stop()

    with pytest.raises(Stop):
        engines.evaluate(matmul(), None, plan(matmul(), 53, "mpfr"), progress=stop)
