"""The ``tc0sim`` command line (docs/cli.md): the group, its shared options and error handling.

Each command lives in its own module (``depth_cmd``, ``size_cmd``, …) and is parse → one call of
``tc0sim.reports`` → print. Exit status: 0 on success, 1 when an audit finds a violated claim, 2 on
bad input — a model file, an option or an input file that is wrong gives one line ``error: …`` on
stderr and no traceback (click's own usage errors also exit 2).
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
import yaml

from tc0sim.cli.approx_cmd import approx
from tc0sim.cli.audit_cmd import audit
from tc0sim.cli.claims_cmd import claims
from tc0sim.cli.demo_cmd import demo
from tc0sim.cli.depth_cmd import depth
from tc0sim.cli.graph_cmd import graph
from tc0sim.cli.kinds_cmd import kinds
from tc0sim.cli.options import EXIT_BAD_INPUT, EXIT_VIOLATED, FORMAT_OPTION, N_OPTION, Count, budget_options, parse_bytes
from tc0sim.cli.output import jsonable, status, unlimited_int_digits
from tc0sim.cli.size_cmd import size
from tc0sim.cli.threshold_cmd import threshold
from tc0sim import __version__
from tc0sim.errors import BudgetError, ConfigError, Tc0simError, one_line
from tc0sim.fp import Format
from tc0sim.ir.budget import active_budget
from tc0sim.npzfile import READ_ERRORS, check_member_header
from tc0sim.limits import MAX_PRECISION, MIN_PRECISION

__all__ = ["EXIT_BAD_INPUT", "EXIT_VIOLATED", "console", "main"]

DEFAULT_MAX_GATES = 5 * 10**7
"""Largest number of gates ``tc0sim eval`` evaluates unless --max-gates says otherwise."""

PARALLEL_MIN_GATES = 10_000_000
"""The MPFR engine starts a local Dask cluster by default from this many gates on: starting and
closing one takes about 1 s, and the serial engine does about 3·10^6 gates/s (measured with 2
workers: 7.1·10^6 gates 2.49 s serial against 2.42 s on Dask, 1.7·10^7 gates 5.38 against 4.24 s)."""


def _one_line(error: BaseException | str) -> str:
    return one_line(error)


class Tc0simGroup(click.Group):
    """A click group that turns tc0sim's deliberate errors and click's usage errors into one line
    ``error: …`` and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Tc0simError, yaml.YAMLError, OSError) as error:
            click.echo(f"error: {_one_line(error)}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (MemoryError, RecursionError) as error:  # a safety net: the limits above should come first
            click.echo(
                f"error: out of {'memory' if isinstance(error, MemoryError) else 'stack'} "
                "before the build budget refused the model; use smaller dims or params, or a smaller --max-memory",
                err=True,
            )
            ctx.exit(EXIT_BAD_INPUT)
        except click.UsageError as error:
            command = f"tc0sim {error.ctx.info_name} --help" if error.ctx and error.ctx.parent else "tc0sim --help"
            click.echo(f"error: {_one_line(error.format_message())} (see '{command}')", err=True)
            ctx.exit(EXIT_BAD_INPUT)


@click.group(cls=Tc0simGroup)
@click.version_option(__version__, prog_name="tc0sim")
def main() -> None:
    """tc0sim: circuit-complexity simulator and depth accountant for VAR and FlowAR.

    Every command but `claims`, `kinds` and `demo` reads MODEL, a YAML model file naming a kind
    (an operator or a model), its dims and params: start from one in examples/ (e.g.
    `tc0sim depth examples/attention.yaml`), list the kinds with `tc0sim kinds`, and see
    docs/model_files.md and docs/cli.md. The claims audited are those of "Circuit Complexity
    Bounds for Visual Autoregressive Model" (Ke, Li, Liang, Shi, Song; arXiv:2501.04299) and "On
    Computational Limits of FlowAR Models: Expressivity and Efficiency" (Cao, Gong, Ke, Li,
    Liang, Sha, Shi, Song; arXiv:2502.16490).
    """


def console() -> None:
    """The ``tc0sim`` program (console script and ``python -m tc0sim``): one command, then exit.

    Python's cyclic garbage collector is off for the command: a graph build or an analysis makes
    millions of acyclic objects that reference counting frees, and every full collection would
    walk all of them again (half a second for FlowAR-H) for cycles that are freed at exit anyway.
    The process then ends without tearing down numpy, rich and the rest (a tenth of a second),
    unless a Dask cluster was started, whose clean-up runs at exit."""
    gc.disable()
    try:
        main(prog_name="tc0sim")
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            sys.stderr.write(done.code + "\n")
        if "distributed" in sys.modules:  # a Dask cluster's clean-up runs at interpreter exit
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe (`tc0sim … | head`): nothing more can be written
            pass
        os._exit(code)  # every file the command wrote is closed; skip tearing down the imported modules


# ---------------------------------------------------------------------------------------------
# shared options and helpers (the names the eval command uses)

_FORMAT_OPTION = FORMAT_OPTION
_N_OPTION = N_OPTION
_parse_bytes = parse_bytes


def _load(model: str) -> Any:
    from tc0sim.modelfile import load_model

    return load_model(model)


# ---------------------------------------------------------------------------------------------
# eval


def _read_inputs(path: str, graph: Any) -> dict[str, np.ndarray]:
    """Arrays of an .npz file, checked against the graph's input names and shapes."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"--inputs {path}: no such file") from None
    except READ_ERRORS as e:
        raise ConfigError(f"--inputs {path}: not a readable .npz archive ({_one_line(e)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"--inputs {path}: expected an .npz archive of named arrays, got a single array")
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for name in archive.files:
            if name not in graph.inputs:
                raise ConfigError(
                    f"--inputs {path}: unknown input {name!r}; the model's inputs are {', '.join(graph.inputs)}"
                )
            expected = graph.node(graph.inputs[name]).shape
            check_member_header(path, archive, name, expected)
            try:
                array = archive[name]
            except READ_ERRORS as e:
                raise ConfigError(f"--inputs {path}: array {name!r} cannot be read ({_one_line(e)})") from None
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise ConfigError(f"--inputs {path}: input {name!r} has a value that is not finite")
            arrays[name] = array
    return arrays


@main.command(name="eval")
@click.argument("model")
@click.option(
    "--precision",
    "-p",
    "precision",
    type=Count(MIN_PRECISION, MAX_PRECISION),
    default=None,
    help=f"Significand bits p, {MIN_PRECISION} ≤ p ≤ {MAX_PRECISION:,} (default: the file's 'precision:').",
)
@_N_OPTION
@click.option("--inputs", "inputs_path", default=None, metavar="IN.npz", help="Inputs and weights by name; missing ones are drawn from the file's seed and scale.")
@click.option(
    "--output",
    "output_path",
    required=True,
    metavar="OUT.json|OUT.npz",
    help="Where to write the outputs: .json as exact [m, e] pairs (value m·2^e), .npz as float64 (only when exact).",
)
@click.option(
    "--max-gates",
    "max_gates",
    type=Count(0, None, exponent=True),
    default=DEFAULT_MAX_GATES,
    show_default=True,
    help="Refuse to evaluate graphs with more gates than this (e.g. 5e7).",
)
@click.option(
    "--weights",
    "weight_files",
    multiple=True,
    metavar="[PREFIX=]CHECKPOINT",
    help="Weights by their state_dict names from a PyTorch checkpoint (weights_only) or safetensors file; "
    "PREFIX= prepends to every name (repeatable, e.g. --weights var_d16.pth --weights vae.=vae.pth).",
)
@budget_options
@click.option("--engine", type=click.Choice(["auto", "fast", "mpfr"]), default="auto", show_default=True, help="fast: binary64 with certified single rounding (p <= 25); mpfr: gmpy2/MPFR (any p); auto: fast where it applies. Same bits.")
@click.option("--stats", "show_stats", is_flag=True, help="Print gates per engine, certified and recomputed elements, and time per operator.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help=f"MPFR engine: number of local Dask worker processes, each charged 100 MB against --max-memory (default: one per core for graphs of at least {PARALLEL_MIN_GATES:,} gates, as many as the budget holds; 0: evaluate in this process).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="MPFR engine: run on the Dask cluster at ADDRESS (e.g. tcp://host:8786); it must have a worker within 30 s.")
@click.option("--chunk", "chunk", type=click.IntRange(min=1), default=None, help="Largest number of product elements held at once per block (fast and serial MPFR engines) or per task (Dask).")
def eval_command(
    model: str, precision: int | None, n: int | None, inputs_path: str | None, output_path: str, max_gates: int,
    weight_files: tuple[str, ...],
    engine: str, show_stats: bool, workers: int | None, scheduler: str | None, chunk: int | None,
) -> None:
    """Bit-exact evaluation of MODEL (a YAML model file) in p-bit floating point; every primitive rounds once.

    A value of F_p is m·2^e with p-bit significand m (2^(p−1) ≤ |m| < 2^p, or m = 0). OUT.json
    holds every output exactly as nested lists of [m, e] integer pairs (any length of m);
    OUT.npz holds float64 arrays and is refused when a value is not exactly a float64. Inputs
    and weights not in --inputs are drawn from the file's seed and scale. See docs/cli.md.
    """
    from tc0sim.interp.evaluate import EvalStats, evaluate, evaluation_bytes
    from tc0sim.interp.parallel import LOCAL_WORKER_BYTES
    from tc0sim.interp.size import size as size_of

    suffix = Path(output_path).suffix.lower()
    if suffix not in (".json", ".npz"):
        raise ConfigError(f"--output {output_path}: expected a .json or .npz file name")
    spec = _load(model)
    p = precision if precision is not None else spec.precision
    if p is None:
        raise ConfigError(f"{model}: no precision: give --precision P or add a 'precision:' key")
    graph = spec.build(n)
    gates = size_of(graph).total
    if gates > max_gates:
        raise ConfigError(
            f"{spec.label(n)} has {gates:,} gates, above the evaluation limit of {max_gates:,}; "
            "use smaller dims or raise --max-gates"
        )
    budget = active_budget()
    needed = evaluation_bytes(graph, p, engine, chunk) if budget is not None else 0
    workers = _eval_workers(engine, p, gates, workers, scheduler, None if budget is None else budget.max_bytes - needed)
    needed += (workers or 0) * LOCAL_WORKER_BYTES
    if budget is not None and needed > budget.max_bytes:
        on, fewer = (f" on {workers} local workers ({LOCAL_WORKER_BYTES:,} bytes each)", " or give fewer --workers") if workers else ("", "")
        raise BudgetError(
            f"evaluating {spec.label(n)} ({gates:,} gates at p={p:,}){on} needs about {needed:,} bytes, "
            f"above the budget of {budget.max_bytes:,} bytes; raise it with --max-memory{fewer}"
        )
    inputs = _read_inputs(inputs_path, graph) if inputs_path else {}
    if weight_files:
        from tc0sim.cli.weights import load_weights

        inputs.update(load_weights(graph, weight_files, spec.kind_info.ignored_weights, supplied=inputs))
    stats = EvalStats()
    with status(f"evaluating {gates:,} gates at p={p}"):
        outputs = evaluate(
            graph, p, inputs=inputs, seed=spec.seed, scale=spec.scale, engine=engine, stats=stats,
            chunk_elements=chunk, workers=workers, scheduler=scheduler, values="native",
        )
    F = Format(p)
    if suffix == ".json":
        document = {
            "format": "tc0sim-eval",
            "kind": spec.kind,
            "file": model,
            "precision": p,
            "dims": spec.dims_at(n),
            "seed": spec.seed,
            "scale": spec.scale,
            "inputs_file": inputs_path,
            "outputs": {
                name: {"shape": list(value.shape), "pairs": F.to_pairs(value)} for name, value in outputs.items()
            },
        }
        with unlimited_int_digits():
            Path(output_path).write_text(json.dumps(jsonable(document)) + "\n", encoding="utf-8")
    else:
        arrays = {}
        for name, value in outputs.items():
            try:
                arrays[name] = F.to_float64_array(value)
            except Tc0simError as e:
                raise ConfigError(
                    f"cannot write {output_path}: output {name!r}: {_one_line(e)}; write .json for exact [m, e] pairs"
                ) from None
        with open(output_path, "wb") as handle:
            np.savez(handle, **arrays)
    shapes = ", ".join(f"{name}{list(v.shape)}" for name, v in outputs.items())
    click.echo(f"wrote {output_path}: {shapes} at p={p} ({gates:,} gates)")
    if show_stats:
        for line in _stats_lines(stats):
            click.echo(line)


def _eval_workers(
    engine: str, p: int, gates: int, workers: int | None, scheduler: str | None, spare: int | None,
) -> int | None:
    """Local Dask workers for the MPFR engine: the user's number, else for large graphs one per
    core, as many as the ``spare`` bytes of the budget hold (None: no cluster, below two)."""
    from tc0sim.fastfp import supports
    from tc0sim.interp.parallel import LOCAL_WORKER_BYTES

    uses_mpfr = engine == "mpfr" or not supports(p)
    for option, given in (("--workers", workers is not None), ("--scheduler", scheduler is not None)):
        if given and not uses_mpfr:
            raise ConfigError(f"{option} applies to the MPFR engine; at p={p} the {engine} engine is the fast one (add --engine mpfr)")
    if workers is not None and scheduler is not None:
        raise ConfigError("--workers starts a local cluster and --scheduler uses yours: give one of them")
    if workers == 0 or scheduler is not None or not uses_mpfr:
        return None
    if workers is None and gates >= PARALLEL_MIN_GATES:
        count = os.cpu_count() or 1
        if spare is not None:
            count = min(count, max(0, spare) // LOCAL_WORKER_BYTES)
        return count if count >= 2 else None
    return workers


def _stats_lines(stats: Any) -> list[str]:
    gates = ", ".join(f"{engine} {count:,}" for engine, count in sorted(stats.gates.items())) or "none"
    lines = [
        f"engine: {stats.engine}; gates by engine: {gates}",
        f"certified elements (exp, ⊕, ⊗): {stats.certified:,}; recomputed by MPFR: {stats.recomputed:,}",
    ]
    if stats.replayed:
        lines.append("the Dask cluster failed or a task raised: evaluated again serially in this process")
    lines.append("time per operator:")
    for op, seconds in sorted(stats.seconds.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {op:<24} {seconds:10.4f} s")
    return lines


for _command in (depth, size, audit, graph, kinds, claims, demo, threshold, approx):
    main.add_command(_command)


if __name__ == "__main__":
    main()
