"""``tc0sim threshold``: one threshold circuit of an F_p primitive, written as JSON and verified
against MPFR (docs/threshold.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.limits import MAX_THRESHOLD_ARITY, MAX_THRESHOLD_PRECISION
from tc0sim.reports.base import Report, Section

MAX_PRECISION = MAX_THRESHOLD_PRECISION
MAX_ARITY = MAX_THRESHOLD_ARITY
VERIFY_LIMIT = 70_000
"""Up to this many operand tuples a circuit is verified exhaustively, else on a seeded sample."""


@dataclass
class ThresholdReport(Report):
    """The circuit written, its statistics and its verification."""

    prim: str
    p: int
    k: int
    output: str
    circuit: Any
    stats: Any
    check: Any
    note: str | None

    @property
    def mismatches(self) -> int:
        """Operand tuples on which the circuit and MPFR disagree (the command's exit status 1)."""
        return self.check.mismatches

    def sections(self) -> list[Section]:
        from tc0sim.threshold.fp_circuits import REDUCTIONS

        stats = self.stats
        label = f"{self.prim} at p = {self.p}" + (f", k = {self.k}" if self.prim in REDUCTIONS else "")
        section = Section(f"threshold circuit for {label} → {self.output}", ("depth", "gates", "wires", "max weight bits"),
                          [[stats.depth, stats.gates, stats.wires, stats.max_weight_bits]])
        section.lines.append(f"inputs {self.circuit.inputs}, outputs {len(self.circuit.outputs)}")
        section.lines.append("verified " + self.check.text())
        if self.note is not None:
            section.lines.append(self.note)
        return [section]

    def as_dict(self) -> dict[str, Any]:
        check = self.check
        return {"primitive": self.prim, "precision": self.p, "arity": self.k, "output": self.output, **self.stats.as_dict(),
                "inputs": self.circuit.inputs, "outputs": len(self.circuit.outputs),
                "verification": {"method": check.method, "cases": check.cases, "mismatches": check.mismatches},
                "depth_note": self.note}


def threshold_report(prim: str, p: int, output: str, k: int | None = None, samples: int = 2000) -> ThresholdReport:
    """Build the threshold circuit of ``prim`` at precision ``p`` (``k`` terms of sum or prod),
    write it to ``output`` (.json) and verify it against MPFR, exhaustively up to VERIFY_LIMIT cases."""
    from tc0sim.threshold.fp_circuits import ARITY, DEPTH_NOTES, PRIMS, REDUCTIONS, build
    from tc0sim.io.outputs import atomic_path
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
    if not output.endswith(".json"):
        raise ConfigError(f"--output {output}: expected a .json file name")
    circuit = build(prim, p, k)
    with atomic_path(output) as temporary:
        circuit.write(temporary)
    check = verify(prim, p, k, circuit, limit=VERIFY_LIMIT, samples=samples)
    return ThresholdReport(prim, p, k, output, circuit, circuit.stats(), check, DEPTH_NOTES.get(prim))
