"""``tc0sim eval``: bit-exact p-bit evaluation of a model file (docs/cli.md, docs/semantics.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from tc0sim.cli.options import N_OPTION, Count, budget_options, load
from tc0sim.cli.released import add_probes, add_seeded, official, write_image
from tc0sim.errors import one_line
from tc0sim.cli.output import jsonable, status, unlimited_int_digits
from tc0sim.engines import PARALLEL_MIN_GATES
from tc0sim.engines import choices as engine_choices
from tc0sim.errors import ConfigError, Tc0simError
from tc0sim.fp import Format
from tc0sim.io.inputs import read_inputs
from tc0sim.ir.budget import active_budget
from tc0sim.limits import MAX_PRECISION, MIN_PRECISION

DEFAULT_MAX_GATES = 5 * 10**7
"""Largest number of gates ``tc0sim eval`` evaluates unless --max-gates says otherwise."""


class EngineChoice(click.Choice):
    """--engine: ``auto`` or a name of tc0sim.engines.ENGINES, read when the option is used (an
    engine added to the table is a choice at once)."""

    def __init__(self) -> None:
        super().__init__(["auto"])

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return engine_choices()

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
    required=True,
    metavar="OUT.json|OUT.npz|OUT.png",
    help="Where to write the outputs: .json as exact [m, e] pairs (value m·2^e), .npz as float64 (only when exact); "
    ".png: a released model's image as the official code saves it (8-bit RGB; a batch as a grid, 8 to a row).",
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
@click.option("--engine", type=EngineChoice(), default="auto", show_default=True, help="fast: binary64 with certified single rounding (p <= 25); mpfr: gmpy2/MPFR (any p); mpfr-dask: MPFR on a Dask cluster (see --workers); auto: fast where it applies. Same bits.")
@click.option("--stats", "show_stats", is_flag=True, help="Print gates per engine, certified and recomputed elements, and time per operator.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help=f"MPFR engine: number of local Dask worker processes, each charged 100 MB against --max-memory (default: one per core for graphs of at least {PARALLEL_MIN_GATES:,} gates, as many as the budget holds; 0: evaluate in this process).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="MPFR engine: run on the Dask cluster at ADDRESS (e.g. tcp://host:8786); it must have a worker within 30 s.")
@click.option("--torch-seed", "torch_seed", type=click.IntRange(0, 2**64 - 1), default=None, metavar="N",
              help="Released models: draw the sampler's random inputs (and a drawn label) from torch's CPU generator "
              "seeded N, in the official order (needs PyTorch), as the official sampler with g_seed=N.")
@click.option("--probe", "probes", multiple=True, metavar="GLOB",
              help="Also write the value of every operator scope matching GLOB (e.g. 'scale*/head', 'scale*/quantiser'), "
              "named by its scope path: the scope's last node (repeatable; .json or .npz output).")
@click.option("--chunk", "chunk", type=click.IntRange(min=1), default=None, help="Largest number of product elements held at once per block (fast and serial MPFR engines) or per task (Dask).")
def eval_command(
    model: str, precision: int | None, n: int | None, inputs_path: str | None, output_path: str, max_gates: int,
    weight_files: tuple[str, ...],
    engine: str, show_stats: bool, workers: int | None, scheduler: str | None, chunk: int | None,
    torch_seed: int | None = None, probes: tuple[str, ...] = (),
) -> None:
    """Bit-exact evaluation of MODEL (a YAML model file) in p-bit floating point; every primitive rounds once.

    A value of F_p is m·2^e with p-bit significand m (2^(p−1) ≤ |m| < 2^p, or m = 0). OUT.json
    holds every output exactly as nested lists of [m, e] integer pairs (any length of m);
    OUT.npz holds float64 arrays and is refused when a value is not exactly a float64. Inputs
    and weights not in --inputs are drawn from the file's seed and scale. See docs/cli.md.
    """
    from tc0sim.engines import EvalStats, evaluate, plan
    from tc0sim.interp.size import size as size_of

    suffix = Path(output_path).suffix.lower()
    if suffix not in (".json", ".npz", ".png"):
        raise ConfigError(f"--output {output_path}: expected a .json or .npz file name (or .png: a released model's image)")
    spec = load(model)
    p = precision if precision is not None else spec.precision
    if p is None:
        raise ConfigError(f"{model}: no precision: give --precision P or add a 'precision:' key")
    graph = spec.build(n)
    if probes:
        add_probes(graph, probes, suffix)
    gates = size_of(graph).total
    if gates > max_gates:
        raise ConfigError(
            f"{spec.label(n)} has {gates:,} gates, above the evaluation limit of {max_gates:,}; "
            "use smaller dims or raise --max-gates"
        )
    budget = active_budget()
    chosen = plan(
        graph, p, engine, workers, scheduler, chunk, None if budget is None else budget.max_bytes, gates=gates,
        label=spec.label(n),
    )
    if suffix == ".png":
        official(spec, "--output .png")  # a kind without an official image is refused before evaluating
    inputs = read_inputs(inputs_path, graph) if inputs_path else {}
    if torch_seed is not None:
        add_seeded(inputs, spec, n, p, torch_seed)
    if weight_files:
        from tc0sim.io import bind_weights

        inputs.update(bind_weights(graph, weight_files, spec.kind_info.ignored_weights, supplied=inputs))
    stats = EvalStats()
    with status(f"evaluating {gates:,} gates at p={p}"):
        outputs = evaluate(graph, inputs, chosen, seed=spec.seed, scale=spec.scale, stats=stats, values="native")
    F = Format(p)
    if suffix == ".png":
        write_image(spec, outputs, output_path)
    elif suffix == ".json":
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
                    f"cannot write {output_path}: output {name!r}: {one_line(e)}; write .json for exact [m, e] pairs"
                ) from None
        with open(output_path, "wb") as handle:
            np.savez(handle, **arrays)
    shapes = ", ".join(f"{name}{list(v.shape)}" for name, v in outputs.items())
    click.echo(f"wrote {output_path}: {shapes} at p={p} ({gates:,} gates)")
    if show_stats:
        for line in _stats_lines(stats):
            click.echo(line)


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
