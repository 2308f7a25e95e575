"""``tc0sim eval``: bit-exact p-bit evaluation of a model file (docs/cli.md, docs/semantics.md).

parse -> plan (printed with --dry-run, or on stderr when long) -> evaluate (progress bar, time
limit, interruption: tc0sim.cli.longrun) -> write (complete or not at all). numpy and the engines
are imported by the command, not by ``--help``.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

import click

from tc0sim.cli.longrun import LONG_SECONDS, duration, progress_bar, size_text, time_limit, write_complete
from tc0sim.cli.options import N_OPTION, Count, budget_options, check_output, check_scheduler, limit_option, load
from tc0sim.errors import ConfigError
from tc0sim.limits import MAX_CHUNK, MAX_PRECISION, MAX_WORKERS, MIN_PRECISION
from tc0sim.cli.released import add_probes, add_seeded, official, write_image

DEFAULT_MAX_GATES = 5 * 10**7
"""Largest number of gates ``tc0sim eval`` evaluates unless --max-gates says otherwise."""


class EngineChoice(click.Choice):
    """--engine: ``auto`` or a name of tc0sim.engines.ENGINES, read when the option is used (an
    engine added to the table is a choice at once; ``--help`` does not import the engines)."""

    def __init__(self) -> None:
        super().__init__(["auto"])

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        from tc0sim.engines import choices

        return choices()

    def get_metavar(self, param: Any, ctx: Any = None) -> str:
        return "ENGINE"

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


@click.command(name="eval")
@click.argument("model")
@click.option(
    "--precision",
    "-p",
    "precision",
    type=Count(MIN_PRECISION, MAX_PRECISION),
    default=None,
    help=f"Significand bits p, {MIN_PRECISION} ≤ p ≤ {MAX_PRECISION:,} (default: the file's 'precision:').",
)
@N_OPTION
@click.option("--inputs", "inputs_path", default=None, metavar="IN.npz", help="Inputs and weights by name; missing ones are drawn from the file's seed and scale.")
@click.option(
    "--output",
    "output_path",
    default=None,
    metavar="OUT.json|OUT.npz|OUT.png",
    help="Where to write the outputs (required unless --dry-run): .json as exact [m, e] pairs (value m·2^e), "
    ".npz as float64 arrays where exact, else NAME.m and NAME.e arrays (docs/cli.md; `tc0sim show OUT` prints "
    "them); .png: a released model's image as the official code saves it (8-bit RGB; a batch as a grid, 8 to a "
    "row). Written under a temporary name and renamed when complete.",
)
@limit_option("--max-gates", 0, DEFAULT_MAX_GATES, "Refuse to evaluate graphs with more gates than this (e.g. 5e7).")
@click.option(
    "--weights",
    "weight_files",
    multiple=True,
    metavar="[PREFIX=]CHECKPOINT",
    help="Weights by their state_dict names from a PyTorch checkpoint (weights_only) or safetensors file; "
    "PREFIX= prepends to every name (repeatable, e.g. --weights var_d16.pth --weights vae.=vae.pth).",
)
@budget_options
@click.option("--engine", type=EngineChoice(), default="auto", show_default=True, help="fast: binary64 with certified single rounding (p <= 53); mpfr: gmpy2/MPFR (any p); mpfr-dask: MPFR on a Dask cluster (see --workers); auto: fast where it applies. Same bits.")
@click.option("--stats", "show_stats", is_flag=True, help="Print gates per engine, certified and recomputed elements, and time per operator.")
@click.option("--workers", type=Count(0, MAX_WORKERS), default=None, help="MPFR engine: number of local Dask worker processes, each charged 100 MB against --max-memory (default and 0: evaluate in this process).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="MPFR engine: run on the Dask cluster at ADDRESS (e.g. tcp://host:8786); it must have a worker within 30 s.")
@click.option("--chunk", "chunk", type=Count(1, MAX_CHUNK), default=None, help="Largest number of product elements held at once per block (fast and serial MPFR engines) or per task (Dask).")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the plan (engine, workers, gates, estimated time and memory) and exit without evaluating.")
@click.option("--quiet", "-q", "quiet", is_flag=True, help="No plan line and no progress bar on stderr.")
@click.option("--max-seconds", "max_seconds", type=click.FloatRange(min=0, min_open=True), default=None, metavar="S",
              help="Refuse when the estimated time is above S seconds, and stop (exit 2, nothing written) if the evaluation runs longer.")
@click.option("--torch-seed", "torch_seed", type=click.IntRange(0, 2**64 - 1), default=None, metavar="N",
              help="Released models: draw the random inputs from torch's CPU generator seeded N, in the official order "
              "(needs PyTorch): VAR's sampler numbers (and a drawn label) as autoregressive_infer_cfg(g_seed=N), "
              "FlowAR's noise as torch.manual_seed(N) before sample_tokens.")
@click.option("--probe", "probes", multiple=True, metavar="GLOB",
              help="Also write the value of every operator scope matching GLOB (e.g. 'scale*/head', 'scale*/quantiser'), "
              "named by its scope path: the scope's last node (repeatable; .json or .npz output).")
def eval_command(
    model: str, precision: int | None, n: int | None, inputs_path: str | None, output_path: str | None, max_gates: int,
    weight_files: tuple[str, ...],
    engine: str, show_stats: bool, workers: int | None, scheduler: str | None, chunk: int | None,
    dry_run: bool, quiet: bool, max_seconds: float | None,
    torch_seed: int | None = None, probes: tuple[str, ...] = (),
) -> None:
    """Bit-exact evaluation of MODEL (a YAML model file) in p-bit floating point; every primitive rounds once.

    A value of F_p is m·2^e with p-bit significand m (2^(p−1) ≤ |m| < 2^p, or m = 0). OUT.json
    holds every output exactly as nested lists of [m, e] integer pairs (any length of m);
    OUT.npz holds an output as a float64 array when every value is exactly one, else as arrays
    NAME.m and NAME.e (value m·2^e). Inputs and weights not in --inputs are drawn from the
    file's seed and scale (a `kind: torch` file's weights are the module's own; the file imports
    and runs the Python code it names). Ctrl-C or SIGTERM stop it (exit 130 or 143) and leave no
    output file. See docs/cli.md.
    """
    from tc0sim.engines import EvalStats, evaluate, plan
    from tc0sim.interp.size import size as size_of
    from tc0sim.io.inputs import read_inputs
    from tc0sim.ir.budget import active_budget

    if output_path is None and not dry_run:
        raise click.UsageError("Missing option '--output' (or give --dry-run).")
    suffix = (check_output(output_path, "--output", (".json", ".npz", ".png")).suffix.lower()
              if output_path is not None else None)
    check_scheduler(scheduler)
    spec = load(model)
    p = precision if precision is not None else spec.precision
    if p is None:
        raise ConfigError(f"{model}: no precision: give --precision P or add a 'precision:' key")
    graph = spec.build(n)
    if probes:
        add_probes(graph, probes, suffix)
    gates = size_of(graph).total
    too_many = (f"{spec.label(n)} has {gates:,} gates, above the evaluation limit of {max_gates:,}; "
                "use smaller dims or raise --max-gates") if gates > max_gates else None
    if too_many and not dry_run:
        raise ConfigError(too_many)
    budget = active_budget()
    max_bytes = None if budget is None else budget.max_bytes
    chosen = plan(  # a dry run shows the plan of a run the limits would refuse, and says so
        graph, p, engine, workers, scheduler, chunk, 2**62 if dry_run else max_bytes, gates=gates, label=spec.label(n),
    )
    if suffix == ".png":
        official(spec, "--output .png")  # a kind without an official image is refused before evaluating
    if dry_run:
        for line in plan_lines(chosen):
            click.echo(line)
        over_memory = max_bytes is not None and chosen.bytes is not None and chosen.bytes > max_bytes
        for refusal in (too_many, f"the estimated peak memory is above --max-memory {max_bytes:,}" if over_memory else None):
            if refusal:
                click.echo(f"a run would be refused: {refusal}")
        return
    if max_seconds is not None and chosen.seconds is not None and chosen.seconds > max_seconds:
        raise ConfigError(f"{spec.label(n)}: the evaluation is estimated at {duration(chosen.seconds)}, above "
                          f"--max-seconds {max_seconds:g}; raise it, or see the plan with --dry-run")
    long = chosen.seconds is not None and chosen.seconds > LONG_SECONDS
    if long and not quiet:
        click.echo(f"plan: {plan_summary(chosen)}", err=True)
    inputs = read_inputs(inputs_path, graph) if inputs_path else {}
    if torch_seed is not None:
        add_seeded(inputs, spec, n, p, torch_seed)
    if weight_files:
        from tc0sim.io import bind_weights

        inputs.update(bind_weights(graph, weight_files, spec.kind_info.ignored_weights, supplied=inputs))
    stats = EvalStats()
    with progress_bar(gates, long and not quiet, sys.stderr) as tally, time_limit(max_seconds, tally.so_far):
        outputs = evaluate(graph, inputs, chosen, seed=spec.seed, scale=spec.scale, stats=stats, values="native",
                           progress=tally)
        if suffix == ".png":
            write_image(spec, outputs, str(output_path))
        else:
            write_outputs(str(output_path), str(suffix), outputs, p, {
                "kind": spec.kind, "file": model, "precision": p, "dims": spec.dims_at(n), "seed": spec.seed,
                "scale": spec.scale, "inputs_file": inputs_path,
            })
    shapes = ", ".join(f"{name}{list(v.shape)}" for name, v in outputs.items())
    click.echo(f"wrote {output_path}: {shapes} at p={p} ({gates:,} gates)")
    if show_stats:
        for line in _stats_lines(stats):
            click.echo(line)


def plan_summary(chosen: Any) -> str:
    """The plan in one line: engine, where it runs, gates, estimated time and peak memory."""
    where = (f"on the Dask cluster at {chosen.scheduler}" if chosen.scheduler else
             f"on {chosen.workers} local Dask workers" if chosen.workers else "in this process")
    memory = f" and {size_text(chosen.bytes)} peak" if chosen.bytes is not None else ""
    gates = f"{chosen.gates:,} gates" if chosen.gates is not None else "gates not counted"
    time_text = f", about {duration(chosen.seconds)}{memory} (estimates)" if chosen.seconds is not None else ""
    return f"{chosen.engine} engine {where}, {gates} at p={chosen.p}{time_text}"


def plan_lines(chosen: Any) -> list[str]:
    """What ``--dry-run`` prints: one field a line."""
    from tc0sim.engines import ENGINES

    where = chosen.scheduler or (f"{chosen.workers} local Dask workers" if chosen.workers else "none (this process)")
    lines = [
        "dry run: nothing evaluated",
        f"engine: {chosen.engine}",
        f"workers: {where}",
        f"precision: {chosen.p}",
        f"gates: {chosen.gates:,}" if chosen.gates is not None else "gates: not counted",
    ]
    if chosen.seconds is not None:
        engine = ENGINES[chosen.engine]
        how = engine.explain(chosen.p) if hasattr(engine, "explain") else f"gates / {engine.rate:.3g} gates per second"
        lines.append(f"estimated time: {duration(chosen.seconds)} (an estimate: {how})")
    if chosen.bytes is not None:
        lines.append(f"estimated peak memory: {size_text(chosen.bytes)} ({chosen.bytes:,} bytes; an estimate)")
    return lines


def write_outputs(path: str, suffix: str, outputs: dict[str, Any], p: int, about: dict[str, Any]) -> None:
    """The outputs as exact [m, e] pairs (.json, with ``about`` the run) or .npz arrays
    (``tc0sim.io.outputs.eval_arrays``), written complete or not at all."""
    import numpy as np

    from tc0sim.cli.output import unlimited_int_digits
    from tc0sim.fp import Format
    from tc0sim.reports.base import jsonable

    F = Format(p)
    if suffix == ".json":
        document = {
            "format": "tc0sim-eval", **about,
            "outputs": {
                name: {"shape": list(value.shape), "pairs": F.to_pairs(value)} for name, value in outputs.items()
            },
        }
        with unlimited_int_digits():
            text = json.dumps(jsonable(document)) + "\n"
        write_complete(path, lambda handle: handle.write(text.encode("utf-8")))
        return
    from tc0sim.io.outputs import eval_arrays

    arrays = eval_arrays(outputs, F)

    def save(handle: IO[bytes]) -> None:
        np.savez(handle, **arrays)

    write_complete(path, save)


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
