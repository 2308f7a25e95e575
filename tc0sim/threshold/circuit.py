"""Threshold circuits: the IR, its JSON form, depth and size, and a bit-parallel simulator.

A gate outputs 1 iff ``Σ wᵢ·xᵢ ≥ t`` over its input wires, with integer weights and threshold and
unbounded fan-in.  Wire ``i < inputs`` is input bit i; wire ``inputs + j`` is gate j.  Gates are in
topological order (a gate reads only inputs and earlier gates), so one pass evaluates the circuit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tc0sim.errors import Tc0simError

__all__ = ["Circuit", "CircuitFormatError", "Stats"]

_F32_EXACT = 2**24
_F64_EXACT = 2**53
_VALUE_BYTES = 1 << 29
_STEP_BYTES = 1 << 28
"""Memory for one step's gathered inputs and sums (float64 per wire read or gate and vector)."""
"""Memory for the wire values of one batch of vectors (float32 0/1 per wire and vector)."""
DENSE_RATIO = 64
_DENSE_ENTRIES = 1 << 22
"""A level is one dense matrix product (BLAS) when its matrix has at most 2^22 entries or at most
DENSE_RATIO entries per wire; sparser, larger levels sum gathered inputs by segments."""
"""Largest gathered (gates × fan-in × vectors) block the simulator materialises at once."""


class CircuitFormatError(Tc0simError, ValueError):
    """A circuit file or object is not a well-formed threshold circuit."""


@dataclass(frozen=True)
class Stats:
    """Depth (gates on the longest input-to-output path) and size of a circuit."""

    depth: int
    gates: int
    wires: int
    max_weight_bits: int

    def as_dict(self) -> dict[str, int]:
        return {"depth": self.depth, "gates": self.gates, "wires": self.wires,
                "max_weight_bits": self.max_weight_bits}


@dataclass
class Circuit:
    """``gates[j] = (weights, wires, threshold)``; ``outputs`` are wire numbers."""

    inputs: int
    gates: list[tuple[list[int], list[int], int]] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    # --- structure -------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise CircuitFormatError unless every wire reference points backwards."""
        if not isinstance(self.inputs, int) or self.inputs < 0:
            raise CircuitFormatError(f"inputs must be a non-negative integer, got {self.inputs!r}")
        for j, gate in enumerate(self.gates):
            if not (isinstance(gate, (list, tuple)) and len(gate) == 3):
                raise CircuitFormatError(f"gate {j} is not [weights, wires, threshold]")
            weights, wires, threshold = gate
            if len(weights) != len(wires):
                raise CircuitFormatError(f"gate {j} has {len(weights)} weights for {len(wires)} wires")
            here = self.inputs + j
            for x in list(weights) + [threshold]:
                if not isinstance(x, int) or isinstance(x, bool):
                    raise CircuitFormatError(f"gate {j}: weight or threshold {x!r} is not an integer")
            for w in wires:
                if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w < here:
                    raise CircuitFormatError(f"gate {j} (wire {here}) reads wire {w!r}, not an earlier wire")
        n = self.inputs + len(self.gates)
        for w in self.outputs:
            if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w < n:
                raise CircuitFormatError(f"output wire {w!r} does not exist (circuit has {n} wires)")

    def levels(self) -> list[int]:
        """The depth of every wire (inputs 0, a gate one more than its deepest input)."""
        level = [0] * (self.inputs + len(self.gates))
        base = self.inputs
        for j, (_, wires, _) in enumerate(self.gates):
            level[base + j] = 1 + max((level[w] for w in wires), default=0)
        return level

    def stats(self) -> Stats:
        """Depth over the outputs' cones, number of gates and wires (Σ fan-in), widest weight."""
        level = self.levels()
        depth = max((level[w] for w in self.outputs), default=0)
        wires = sum(len(g[1]) for g in self.gates)
        bits = max((abs(x).bit_length() for g in self.gates for x in list(g[0]) + [g[2]]), default=0)
        return Stats(depth=depth, gates=len(self.gates), wires=wires, max_weight_bits=bits)

    # --- JSON ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs,
                "gates": [[list(w), list(x), t] for w, x, t in self.gates],
                "outputs": list(self.outputs)}

    @classmethod
    def from_json(cls, data: Any) -> "Circuit":
        if not isinstance(data, dict) or set(data) != {"inputs", "gates", "outputs"}:
            raise CircuitFormatError("a circuit is an object with exactly the keys inputs, gates, outputs")
        if not isinstance(data["gates"], list) or not isinstance(data["outputs"], list):
            raise CircuitFormatError("gates and outputs must be lists")
        gates = []
        for j, g in enumerate(data["gates"]):
            if not (isinstance(g, list) and len(g) == 3 and isinstance(g[0], list) and isinstance(g[1], list)):
                raise CircuitFormatError(f"gate {j} is not [[weights], [wires], threshold]")
            gates.append((list(g[0]), list(g[1]), g[2]))
        circuit = cls(inputs=data["inputs"], gates=gates, outputs=list(data["outputs"]))
        circuit.validate()
        return circuit

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> "Circuit":
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise CircuitFormatError(f"{path}: not JSON ({exc})") from None
        return cls.from_json(data)

    # --- simulation ------------------------------------------------------------------------

    def simulate(self, bits: np.ndarray, batch: int = 1 << 16) -> np.ndarray:
        """Outputs for many input vectors at once: ``bits`` is (vectors × inputs), 0/1 or bool.

        Gates of one level are evaluated together: as one dense matrix product over the wires they
        read unless that matrix is large and sparse, else as segment sums of gathered inputs;
        gates with Σ|w| ≥ 2^53 by 26-bit limbs with exact integer carries.
        Sums are exact: float32 when a gate's Σ|w| < 2^24, float64 below 2^53, Python ints above.
        """
        bits = np.asarray(bits)
        if bits.ndim != 2 or bits.shape[1] != self.inputs:
            raise CircuitFormatError(f"simulate expects (vectors, {self.inputs}) bits, got shape {bits.shape}")
        plan = self._plan()
        out = np.empty((bits.shape[0], len(self.outputs)), dtype=bool)
        rows = self.inputs + len(self.gates) + 1
        widest = max((step.width for step in plan), default=1)
        batch = max(64, min(batch, _VALUE_BYTES // (4 * rows), _STEP_BYTES // (8 * widest)))
        for start in range(0, bits.shape[0], batch):
            chunk = bits[start:start + batch]
            values = np.zeros((rows, chunk.shape[0]), dtype=np.float32)
            values[:self.inputs] = chunk.T
            for step in plan:
                step.run(values)
            out[start:start + batch] = values[self.outputs].T.astype(bool)
        return out

    def _plan(self) -> list[Any]:
        level = self.levels()
        groups: dict[tuple[int, str], list[int]] = {}
        for j, (weights, wires, _) in enumerate(self.gates):
            total = sum(abs(w) for w in weights)
            kind = "f32" if total < _F32_EXACT else "f64" if total < _F64_EXACT else "int"
            groups.setdefault((level[self.inputs + j], kind), []).append(j)
        steps: list[Any] = []
        for (_, kind), members in sorted(groups.items()):
            columns = sorted({w for j in members for w in self.gates[j][1]})
            wires = sum(len(self.gates[j][1]) for j in members)
            if kind != "int":
                entries = len(members) * len(columns)
                dense = entries <= _DENSE_ENTRIES or entries <= DENSE_RATIO * wires
                steps.append(_DenseStep(self, members, columns, kind) if dense else _SegmentStep(self, members, kind))
                continue
            columns_of = [sorted(set(self.gates[j][1])) for j in members]
            block: list[int] = []
            width: set[int] = set()
            for j, cols in zip(members, columns_of):
                if block and (len(block) + 1) * len(width | set(cols)) > _DENSE_ENTRIES:
                    steps.append(_LimbStep(self, block, sorted(width)))
                    block, width = [], set()
                block.append(j)
                width |= set(cols)
            steps.append(_LimbStep(self, block, sorted(width)))
        return steps


class _SegmentStep:
    """Sparse gates of one level: weighted inputs gathered once, summed per gate by segments."""

    def __init__(self, circuit: Circuit, members: Sequence[int], kind: str):
        dtype = np.float32 if kind == "f32" else np.float64
        self.targets = np.array([circuit.inputs + j for j in members], dtype=np.int64)
        wires = [w for j in members for w in circuit.gates[j][1]]
        weights = [c for j in members for c in circuit.gates[j][0]]
        counts = [len(circuit.gates[j][1]) for j in members]
        self.wires = np.array(wires, dtype=np.int64)
        self.weights = np.array(weights, dtype=dtype)[:, None]
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.empty = np.array([c == 0 for c in counts])
        self.width = 2 * len(wires) + len(members)
        self.thresholds = np.array([circuit.gates[j][2] for j in members], dtype=dtype)[:, None]

    def run(self, values: np.ndarray) -> None:
        if len(self.wires) == 0:
            values[self.targets] = 0 >= self.thresholds
            return
        terms = values[self.wires] * self.weights
        sums = np.add.reduceat(terms, np.minimum(self.starts, len(self.wires) - 1), axis=0)
        sums[self.empty] = 0
        values[self.targets] = sums >= self.thresholds


class _DenseStep:
    """Gates of one level whose weights, as a dense matrix over the wires they read, are not sparse."""

    def __init__(self, circuit: Circuit, members: Sequence[int], columns: list[int], kind: str):
        dtype = np.float32 if kind == "f32" else np.float64
        self.targets = np.array([circuit.inputs + j for j in members], dtype=np.int64)
        self.columns = np.array(columns, dtype=np.int64)
        where = {w: i for i, w in enumerate(columns)}
        self.matrix = np.zeros((len(members), len(columns)), dtype=dtype)
        self.width = 2 * len(columns) + len(members)
        self.thresholds = np.zeros((len(members), 1), dtype=dtype)
        for row, j in enumerate(members):
            weights, wires, threshold = circuit.gates[j]
            for w, x in zip(weights, wires):
                self.matrix[row, where[x]] += w
            self.thresholds[row, 0] = threshold

    def run(self, values: np.ndarray) -> None:
        block = values[self.columns]
        if self.matrix.dtype != np.float32:
            block = block.astype(self.matrix.dtype)
        values[self.targets] = (self.matrix @ block) >= self.thresholds


class _LimbStep:
    """Gates with Σ|w| ≥ 2^53: weights split into signed 26-bit limbs, one float64 product per
    limb (exact: fan-in < 2^27), then exact int64 carries decide Σ w·x ≥ t."""

    BITS = 26

    def __init__(self, circuit: Circuit, members: Sequence[int], columns: list[int]):
        self.targets = np.array([circuit.inputs + j for j in members], dtype=np.int64)
        self.columns = np.array(columns, dtype=np.int64)
        where = {w: i for i, w in enumerate(columns)}
        top = max(abs(x) for j in members for x in circuit.gates[j][0] + [circuit.gates[j][2]])
        self.limbs = max(1, -(-top.bit_length() // self.BITS))
        mask = (1 << self.BITS) - 1
        self.matrices = np.zeros((self.limbs, len(members), len(columns)), dtype=np.float64)
        self.width = 2 * len(columns) + 3 * len(members)
        self.thresholds = np.zeros((self.limbs, len(members), 1), dtype=np.int64)
        for row, j in enumerate(members):
            weights, wires, threshold = circuit.gates[j]
            for w, x in zip(weights, wires):
                for limb in range(self.limbs):
                    digit = (abs(w) >> (self.BITS * limb)) & mask
                    self.matrices[limb, row, where[x]] += digit if w > 0 else -digit
            for limb in range(self.limbs):
                digit = (abs(threshold) >> (self.BITS * limb)) & mask
                self.thresholds[limb, row, 0] = digit if threshold > 0 else -digit

    def run(self, values: np.ndarray) -> None:
        block = values[self.columns].astype(np.float64)
        carry = np.zeros((len(self.targets), values.shape[1]), dtype=np.int64)
        for limb in range(self.limbs):
            v = (self.matrices[limb] @ block).astype(np.int64) - self.thresholds[limb] + carry
            if limb == self.limbs - 1:
                values[self.targets] = v >= 0
            else:
                carry = v >> self.BITS
