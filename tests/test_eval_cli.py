"""``tc0sim eval`` at scale (issue 31): the plan (``--dry-run``, the plan line), the in-process
default, ``--max-seconds``, interruption by SIGINT / SIGTERM (real subprocesses), output files
written complete or not at all, and ``--help`` without numpy.

Expected values are hand counts (matmul n1·d·n2 products and n1·n2 sums of d terms), the shell's
128 + signal convention, and the files on disk; never the code under test.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tc0sim.cli.longrun import write_complete
from tc0sim.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
MATMUL = ROOT / "examples" / "matmul.yaml"  # X[n, n] · Y[n, 2n]: 2n³ products + 2n² sums of n terms


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def matmul_gates(n: int) -> int:
    return n * n * 2 * n + n * 2 * n


def test_dry_run_prints_the_plan_and_evaluates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = run("eval", MATMUL, "--n", 40, "--precision", 64, "--dry-run", "--output", out)
    assert result.exit_code == 0, result.output
    fields = dict(line.split(": ", 1) for line in result.output.splitlines()[1:])
    assert result.output.startswith("dry run: nothing evaluated\n")
    assert fields["engine"] == "mpfr" and fields["workers"] == "none (this process)" and fields["precision"] == "64"
    assert fields["gates"] == f"{matmul_gates(40):,}"
    assert "an estimate" in fields["estimated time"] and "gates per second" in fields["estimated time"]
    assert fields["estimated peak memory"].endswith("bytes; an estimate)")
    assert not out.exists()
    result = run("eval", MATMUL, "--dry-run")  # no --output needed
    assert result.exit_code == 0 and "engine: fast" in result.output and f"gates: {matmul_gates(4):,}" in result.output


def test_a_large_graph_stays_in_this_process_unless_workers_are_given(monkeypatch) -> None:
    """The default never starts a Dask cluster (measured ~10x slower on a loaded 2-core machine)."""
    from tc0sim.engines import plan
    from tc0sim.modelfile import load_model

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    graph = load_model(MATMUL).build(None)
    chosen = plan(graph, 64, gates=10**12, max_memory=10**15)
    assert (chosen.engine, chosen.workers, chosen.scheduler) == ("mpfr", None, None)
    assert plan(graph, 64, workers=2, gates=10**12).engine == "mpfr-dask"


def test_the_time_estimate_is_gates_over_the_engine_rate() -> None:
    from tc0sim.engines import ENGINES, plan
    from tc0sim.modelfile import load_model

    graph = load_model(MATMUL).build(None)
    for p, engine in ((24, "fast"), (64, "mpfr")):
        chosen = plan(graph, p, gates=3 * 10**9)
        assert chosen.engine == engine and chosen.seconds == pytest.approx(3e9 / ENGINES[engine].rate)
    assert plan(graph, 53).seconds is None  # gates not counted: no estimate


def test_max_seconds_refuses_a_long_estimate_up_front(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = run("eval", MATMUL, "--n", 200, "-p", 64, "--max-seconds", "0.5", "--output", out)
    assert result.exit_code == 2 and "above --max-seconds 0.5" in result.output and not out.exists()


def test_max_seconds_stops_a_run_that_takes_longer(tmp_path: Path, monkeypatch) -> None:
    """An estimate far too low (the rate patched) passes the check; the run is stopped at the
    limit and an existing output file is left as it was."""
    from tc0sim import engines

    monkeypatch.setitem(engines.ENGINES, "mpfr", dataclasses.replace(engines.ENGINES["mpfr"], rate=1e15))
    out = tmp_path / "out.json"
    out.write_text("before\n")
    start = time.monotonic()
    result = run("eval", MATMUL, "--n", 200, "-p", 3000, "--max-seconds", "0.3", "--output", out)
    assert result.exit_code == 2, result.output
    assert "stopped after --max-seconds 0.3" in result.output and "gates done" in result.output
    assert time.monotonic() - start < 30
    assert out.read_text() == "before\n" and sorted(os.listdir(tmp_path)) == ["out.json"]


def test_write_complete_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    def half(handle) -> None:
        handle.write(b"partial")
        raise KeyboardInterrupt()

    with pytest.raises(KeyboardInterrupt):
        write_complete(str(target), half)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.npz"]
    write_complete(str(target), lambda handle: np.savez(handle, a=np.arange(3.0)))
    assert np.load(target)["a"].tolist() == [0.0, 1.0, 2.0] and os.listdir(tmp_path) == ["out.npz"]
    assert (target.stat().st_mode & 0o777) == (0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("output, message", [
    ("missing_dir/out.json", "does not exist"),
    ("out.txt", "expected a .json, .npz or .png file name"),
    (".", "expected a .json, .npz or .png"),
])
def test_the_output_path_is_checked_before_evaluating(tmp_path: Path, monkeypatch, output, message) -> None:
    from tc0sim import engines

    def never(*args, **kwargs):
        raise AssertionError("evaluated before the output path was checked")

    monkeypatch.setattr(engines, "evaluate", never)
    monkeypatch.chdir(tmp_path)
    result = run("eval", MATMUL, "--output", output)
    assert result.exit_code == 2 and message in result.output


def test_an_unwritable_directory_is_refused_before_evaluating(tmp_path: Path, monkeypatch) -> None:
    """(Permissions are simulated: the tests may run as root, who may write anywhere.)"""
    from tc0sim.io import outputs

    folder = tmp_path / "locked"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False if Path(path) == folder else real(path, mode))
    result = run("eval", MATMUL, "--output", folder / "out.json")
    assert result.exit_code == 2 and "is not writable" in result.output and os.listdir(folder) == []


def _start_eval(tmp_path: Path, *extra: str) -> subprocess.Popen:
    """An eval that takes several seconds (matmul 200 at p = 3000, 1.6·10^7 gates with MPFR), in
    its own session so that a signal can go to its whole process group, as Ctrl-C does."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "tc0sim", "eval", str(MATMUL), "--n", "200", "-p", "3000", "--output",
         str(tmp_path / "out.json"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True, text=True,
    )


def _wait_for_plan(proc: subprocess.Popen) -> str:
    line = proc.stderr.readline()  # the plan line: the graph is built and the evaluation starts
    assert line.startswith("plan: "), line + proc.stderr.read()
    return line


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_evaluation_with_one_line_and_no_output(tmp_path: Path, sig, status) -> None:
    proc = _start_eval(tmp_path)
    _wait_for_plan(proc)
    time.sleep(1.0)
    assert proc.poll() is None, "the evaluation ended before the signal"
    sent = time.monotonic()
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5  # a second here; slack for a loaded machine
    assert proc.returncode == status, err
    assert err == "error: interrupted\n" and out == ""
    assert os.listdir(tmp_path) == []  # neither the output nor its temporary name


def test_ctrl_c_during_a_dask_evaluation_shuts_the_workers_down(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group (the client and its worker processes): one line,
    no traceback from any process, exit 130, and no process of the group left behind."""
    pytest.importorskip("distributed")
    proc = _start_eval(tmp_path, "--workers", "1")
    _wait_for_plan(proc)
    time.sleep(6.0)  # the cluster starts (a few seconds) and takes work
    assert proc.poll() is None, "the evaluation ended before the signal"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "error: interrupted", err
    deadline = time.monotonic() + 20
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "a worker process outlived the command"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", [[], ["eval"], ["depth"], ["size"], ["audit"], ["graph"], ["kinds"], ["claims"],
                                     ["demo"], ["threshold"], ["approx"], ["approx", "perturbation"]])
def test_help_imports_neither_numpy_nor_the_engines(command: list[str]) -> None:
    """`tc0sim --help` and each command's help start without numpy, the engines or the reports
    (issue 31: numpy alone took 0.17 s of start-up)."""
    code = (
        "import sys\nfrom tc0sim.cli.main import main\n"
        f"try:\n    main({command + ['--help']!r}, prog_name='tc0sim')\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m == 'numpy' or m.startswith(('tc0sim.engines', 'tc0sim.reports', 'tc0sim.ir')))\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and done.stdout.rstrip().splitlines()[-1] == "HEAVY []"


def test_the_time_estimate_follows_the_precision(tmp_path: Path) -> None:
    """At p = 10^6 one MPFR gate costs milliseconds (gmpy2's mul and div grow like p^1.4), so a few
    thousand gates are refused by --max-seconds up front, not run for hours (issue 33's softmax)."""
    from tc0sim.engines import plan
    from tc0sim.interp.size import size
    from tc0sim.modelfile import load_model

    graph = load_model(str(MATMUL)).build(None)
    gates = size(graph).total
    small, huge = plan(graph, 53, "mpfr", gates=gates), plan(graph, 10**6, "mpfr", gates=gates)
    assert small.gates == huge.gates and huge.seconds > 10**4 * small.seconds
    result = run("eval", MATMUL, "--precision", "1000000", "--max-seconds", "5", "--output", tmp_path / "o.json")
    assert result.exit_code == 2 and "--max-seconds" in result.output and not (tmp_path / "o.json").exists()


def test_a_dry_run_shows_the_plan_of_a_run_the_limits_would_refuse() -> None:
    """--dry-run is how a user learns what a real image would cost: it prints the plan even above
    --max-gates and --max-memory, and says the run would be refused (exit 0, nothing written)."""
    result = run("eval", MATMUL, "--dry-run", "--max-gates", "10", "--max-memory", "7000")
    assert result.exit_code == 0, result.output
    assert "gates: 160" in result.output and "estimated peak memory" in result.output
    assert "a run would be refused: " in result.output and "--max-gates" in result.output
    assert "above --max-memory 7,000" in result.output


def test_the_fast_engines_time_estimate_counts_products_and_other_gates_apart() -> None:
    """The plan's estimate: products (mul gates, counted here from the matmul's shape, n·n·2n) at the
    products' rate, the other gates (the n·2n sums) at the other rate."""
    from tc0sim.engines import plan
    from tc0sim.engines.fast import engine as fast
    from tc0sim.modelfile import load_model

    graph = load_model(MATMUL).build(40)
    for p in (8, 53):
        chosen = plan(graph, p, "fast", gates=matmul_gates(40))
        want = 40 * 40 * 80 / fast.product_rate(p) + 40 * 80 / fast.FAST_RATE
        assert chosen.seconds is not None and abs(chosen.seconds - want) <= 1e-12 * want
    assert fast.product_rate(8) > fast.product_rate(53)  # the fused kernel covers p <= 25 only
