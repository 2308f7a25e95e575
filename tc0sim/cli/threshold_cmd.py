"""``tc0sim threshold PRIM --precision P [--arity K] --output CIRCUIT.json``: one verified circuit."""

from __future__ import annotations

import click

from tc0sim.cli.output import FORMATS, Section, emit
from tc0sim.errors import ConfigError

MAX_PRECISION = 24
"""Largest p the command builds (the sum circuit grows as k²·p²; p = 24 already takes seconds)."""
MAX_ARITY = 64
VERIFY_LIMIT = 70_000
"""Up to this many operand tuples the command verifies exhaustively, else on a seeded sample."""


@click.command()
@click.argument("prim")
@click.option("--precision", "p", type=int, required=True, help="p of F_p (2 ≤ p ≤ 24).")
@click.option("--arity", "k", type=int, default=None, help="Number of terms of sum or prod (default 2; the other primitives take their fixed arity).")
@click.option("--output", "output_path", required=True, metavar="CIRCUIT.json", help="Where to write the circuit.")
@click.option("--samples", type=click.IntRange(min=1), default=2000, help="Seeded cases when not exhaustive.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text")
def threshold(prim: str, p: int, k: int | None, output_path: str, samples: int, fmt: str) -> None:
    """Build the threshold circuit of an F_p primitive, write it as JSON, verify it against MPFR.

    Encoding: each operand is 2p+3 bits (zero flag, sign, |m| bits p−1..0, e as (p+1)-bit two's
    complement, MSB first); outputs are the result in that encoding and an error bit (range error,
    division by zero, sqrt of a negative; compare: the single bit a < b). See docs/threshold.md.
    """
    from tc0sim.threshold.fp_circuits import ARITY, DEPTH_NOTES, PRIMS, REDUCTIONS, build
    from tc0sim.threshold.verify import verify

    if prim not in PRIMS:
        raise ConfigError(f"no threshold circuit for {prim!r}; expected one of {', '.join(sorted(PRIMS))}")
    if not 2 <= p <= MAX_PRECISION:
        raise ConfigError(f"--precision {p}: expected 2 ≤ p ≤ {MAX_PRECISION}")
    fixed = ARITY.get(prim, 2)
    if k is not None and prim not in REDUCTIONS and k != fixed:
        raise ConfigError(f"--arity {k}: {prim} takes exactly {fixed} operand(s)")
    k = (2 if prim in REDUCTIONS else fixed) if k is None else k
    if not 1 <= k <= MAX_ARITY:
        raise ConfigError(f"--arity {k}: expected 1 ≤ k ≤ {MAX_ARITY}")
    if not output_path.endswith(".json"):
        raise ConfigError(f"--output {output_path}: expected a .json file name")
    circuit = build(prim, p, k)
    circuit.write(output_path)
    stats = circuit.stats()
    check = verify(prim, p, k, circuit, limit=VERIFY_LIMIT, samples=samples)
    label = f"{prim} at p = {p}" + (f", k = {k}" if prim in REDUCTIONS else "")
    section = Section(f"threshold circuit for {label} → {output_path}", ("depth", "gates", "wires", "max weight bits"),
                      [[stats.depth, stats.gates, stats.wires, stats.max_weight_bits]])
    section.lines.append(f"inputs {circuit.inputs}, outputs {len(circuit.outputs)}")
    section.lines.append("verified " + check.text())
    if prim in DEPTH_NOTES:
        section.lines.append(DEPTH_NOTES[prim])
    data = {"primitive": prim, "precision": p, "arity": k, "output": output_path, **stats.as_dict(),
            "inputs": circuit.inputs, "outputs": len(circuit.outputs),
            "verification": {"method": check.method, "cases": check.cases, "mismatches": check.mismatches},
            "depth_note": DEPTH_NOTES.get(prim)}
    emit(fmt, [section], data)
    if check.mismatches:
        raise click.exceptions.Exit(1)
