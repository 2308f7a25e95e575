"""Building threshold circuits from literals: the construction library.

A *literal* is an int: ``2·w`` is wire w, ``2·w + 1`` its negation, ``ONE``/``ZERO`` the constants.
Negations and constants cost nothing: ``w·(1 − x) = w − w·x`` moves into the consumer's threshold.
Every construction states its depth (gate layers it adds on top of its deepest input literal).
Large (exponential) weights are used freely: a comparison of two n-bit integers is ONE gate with
weights up to 2^n (Muroga, *Threshold Logic and its Applications*); the weight widths are reported
with every circuit.
"""

from __future__ import annotations

import hashlib
import marshal
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from tc0sim.threshold.circuit import Circuit, Stats

__all__ = ["Builder", "CountedCircuit", "ONE", "ZERO", "Term", "Group", "counting"]

ONE = -1
ZERO = -2

Term = tuple[int, int]
"""(literal, weight)."""
Group = list[Term]
"""Terms of which at most one literal is 1 for every valid input (used for tighter sum bounds)."""


def _centred(w: int, mod: int) -> int:
    """The residue of w modulo mod in [−mod/2, mod/2)."""
    r = w % mod
    return r - mod if 2 * r >= mod else r


def neg(lit: int) -> int:
    """The negation of a literal (free)."""
    if lit == ONE:
        return ZERO
    if lit == ZERO:
        return ONE
    return lit ^ 1


_COUNTING: ContextVar[bool] = ContextVar("threshold_counting", default=False)


@contextmanager
def counting() -> Iterator[None]:
    """Builders created inside run in counting mode (see ``Builder``): ``with counting(): sum_(p, k).stats()``."""
    token = _COUNTING.set(True)
    try:
        yield
    finally:
        _COUNTING.reset(token)


@dataclass(frozen=True)
class CountedCircuit:
    """What a counting-mode builder returns in place of a Circuit: its inputs, outputs and Stats."""

    inputs: int
    outputs: int
    counted: Stats

    def stats(self) -> Stats:
        return self.counted


class Builder:
    """Accumulates gates in topological order; identical gates are built once.

    In *counting mode* (``counting=True``, or created inside ``with counting():``) the same
    construction code runs but no gate is stored: each gate keeps only its depth (1 + the deepest
    of its input wires), and the numbers of gates and wires and the widest weight are summed.
    Identical gates are still built once: the cache is keyed by a 128-bit BLAKE2b digest of the
    gate's canonical form (sorted wires, their weights, threshold; serialised by ``marshal``)
    instead of the form itself, so the counts equal the full build's unless two different gates'
    digests collide (probability below 10^−20 for 10^8 gates).
    """

    def __init__(self, counting: bool | None = None) -> None:
        self.counting = _COUNTING.get() if counting is None else counting
        self.n_inputs = 0
        self.gates: list[tuple[list[int], list[int], int]] = []
        self._cache: dict[object, int] = {}
        self._depth: list[int] = []
        """Counting mode: the depth of every wire (inputs 0)."""
        self._totals = [0, 0, 0]
        """Counting mode: gates, wires (Σ fan-in), max weight bits."""

    # --- wires and gates -------------------------------------------------------------------

    def inputs(self, n: int) -> list[int]:
        """n new input bits (all inputs must be declared before the first gate)."""
        if self.n_gates:
            raise ValueError("declare every input before the first gate")
        first = self.n_inputs
        self.n_inputs += n
        self._depth.extend([0] * n)
        return [2 * w for w in range(first, first + n)]

    def gate(self, terms: Iterable[Term], threshold: int) -> int:
        """[Σ w·lit ≥ threshold] (depth 1); constant or single-literal gates are not built."""
        acc: dict[int, int] = {}
        get = acc.get
        t = threshold
        for lit, w in terms:
            if lit < 0:
                if lit == ONE:
                    t -= w
                continue
            if lit & 1:
                t -= w
                w = -w
            wire = lit >> 1
            acc[wire] = get(wire, 0) + w
        if 0 in acc.values():
            acc = {x: w for x, w in acc.items() if w}
        total, spread = sum(acc.values()), sum(map(abs, acc.values()))
        if (total - spread) // 2 >= t:
            return ONE
        if (total + spread) // 2 < t:
            return ZERO
        if len(acc) == 1:
            ((wire, w),) = acc.items()
            return 2 * wire if w > 0 else 2 * wire + 1
        wires = sorted(acc)
        return 2 * self._raw(tuple(wires), tuple(map(acc.__getitem__, wires)), t)

    def gate_if(self, terms: Sequence[Term], threshold: int, enable: Sequence[int] = ()) -> int:
        """[Σ w·lit ≥ threshold] ∧ every enable literal, as ONE gate (depth 1)."""
        if not enable:
            return self.gate(terms, threshold)
        big = sum(max(0, w) for _, w in terms) - threshold + 1
        if big <= 0:
            return ZERO
        return self.gate(list(terms) + [(e, big) for e in enable], threshold + big * len(enable))

    def and_(self, lits: Sequence[int]) -> int:
        """AND of literals; of two or more literals on distinct wires the gate is built directly
        (the one ``gate`` would build: weight ±1 per wire, threshold n − negated literals)."""
        wires = sorted(x >> 1 for x in lits)
        if len(lits) < 2 or min(lits) < 0 or len(set(wires)) < len(wires):
            return self.gate([(x, 1) for x in lits], len(lits))
        sign = {x >> 1: -1 if x & 1 else 1 for x in lits}
        weights = tuple(map(sign.__getitem__, wires))
        return 2 * self._raw(tuple(wires), weights, len(lits) - weights.count(-1))

    def or_(self, lits: Sequence[int]) -> int:
        return self.gate([(x, 1) for x in lits], 1)

    def maj(self, lits: Sequence[int]) -> int:
        """Majority: at least half of the literals (ties count as 1)."""
        return self.gate([(x, 1) for x in lits], (len(lits) + 1) // 2)

    def xor2(self, a: int, b: int) -> int:
        """a ⊕ b (depth 2)."""
        both = self.and_([a, b])
        return self.gate([(a, 1), (b, 1), (both, -2)], 1)

    def wire(self, lit: int) -> int:
        """A wire carrying the literal (a gate is built for a negation or a constant)."""
        if lit == ONE:
            return self._raw((), (), 0)
        if lit == ZERO:
            return self._raw((), (), 1)
        if lit & 1:
            return self._raw((lit >> 1,), (-1,), 0)
        return lit >> 1

    def _raw(self, wires: tuple[int, ...], weights: tuple[int, ...], t: int) -> int:
        """The wire of gate [Σ w·x ≥ t] over wires in increasing order, built once."""
        if self.counting:
            key: object = hashlib.blake2b(marshal.dumps((wires, weights, t)), digest_size=16).digest()
        else:
            key = (wires, weights, t)
        found = self._cache.get(key)
        if found is not None:
            return found
        found = self.n_inputs + self.n_gates
        self._cache[key] = found
        if not self.counting:
            self.gates.append((list(weights), list(wires), t))
            return found
        depth = self._depth
        depth.append(1 + max(map(depth.__getitem__, wires), default=0))
        totals = self._totals
        totals[0] += 1
        totals[1] += len(wires)
        widest = max(max(weights, default=0), -min(weights, default=0), abs(t)).bit_length()
        if widest > totals[2]:
            totals[2] = widest
        return found

    @property
    def n_gates(self) -> int:
        return self._totals[0] if self.counting else len(self.gates)

    def inline(self, circuit: Circuit, inputs: Sequence[int]) -> list[int]:
        """Copy a circuit in with its input bits bound to literals; returns its output literals.

        Constants and repeated gates fold as in ``gate`` (a constant input can shrink the copy)."""
        if len(inputs) != circuit.inputs:
            raise ValueError(f"the circuit takes {circuit.inputs} inputs, got {len(inputs)}")
        lits = list(inputs)
        for weights, wires, threshold in circuit.gates:
            lits.append(self.gate([(lits[w], c) for c, w in zip(weights, wires)], threshold))
        return [lits[w] for w in circuit.outputs]

    def circuit(self, outputs: Sequence[int]) -> Circuit | CountedCircuit:
        """The circuit with these output literals (each becomes a wire); in counting mode its Stats."""
        wires = [self.wire(o) for o in outputs]
        if not self.counting:
            return Circuit(inputs=self.n_inputs, gates=list(self.gates), outputs=wires)
        gates, fan_in, bits = self._totals
        depth = max((self._depth[w] for w in wires), default=0)
        return CountedCircuit(self.n_inputs, len(wires), Stats(depth, gates, fan_in, bits))

    # --- integers --------------------------------------------------------------------------

    def bits_of_sum(self, groups: Sequence[Group], nbits: int, const: int = 0,
                    enable: Sequence[int] = (), first: int = 0) -> list[int]:
        """Two's-complement bits first..nbits−1 of S = const + Σ w·lit (depth 2; 1 for some bits).

        Bit j of S is bit j of S_j = (const mod 2^(j+1)) + Σ (w mod 2^(j+1))·lit, because S ≡ S_j
        modulo 2^(j+1) (residues taken in [−2^j, 2^j)).  |S_j| ≤ (groups + 1)·2^j, so bit j is 1 on
        at most groups + 1 intervals of S_j; a first layer of gates [S_j ≥ t] at the interval ends and one output
        gate counting the intervals that contain S_j give the bit (the depth-2 iterated addition
        of Siu and Bruck with exponential weights).  ``enable`` literals are ANDed into each bit.
        """
        out = []
        for j in range(first, nbits):
            mod = 1 << (j + 1)
            half = 1 << j
            reduced = [[(lit, _centred(w, mod)) for lit, w in g] for g in groups]
            terms = [(lit, w) for g in reduced for lit, w in g if w]
            c = _centred(const, mod)
            lo = c + sum(min(0, min((w for _, w in g), default=0)) for g in reduced)
            hi = c + sum(max(0, max((w for _, w in g), default=0)) for g in reduced)
            spans = []
            for r in range(lo // mod, hi // mod + 1):
                a, z = max(lo, r * mod + half), min(hi, (r + 1) * mod - 1)
                if a <= z:
                    spans.append((a, z))
            if not spans:
                out.append(ZERO)
                continue
            if len(spans) == 1 and spans[0][1] == hi:
                out.append(self.gate_if(terms, spans[0][0] - c, enable))
                continue
            count = [t for a, z in spans for t in ((self.gate(terms, a - c), 1), (self.gate(terms, z + 1 - c), -1))]
            out.append(self.gate_if(count, 1, enable))
        return out

    def add_rows(self, rows: Sequence[Sequence[int]], const: int, width: int) -> list[int]:
        """Bits 0..width−1 of (const + Σ rows), rows given as bit literals (LSB first), mod 2^width.

        Block save (Siu and Bruck; Hofmeister): while a column holds more than two literals, each
        block of B columns is summed exactly (``bits_of_sum``, depth 2) — B = 1 (column counts)
        for tall columns, B = ⌈log2 height⌉ otherwise — which leaves at most two literals per
        column; then a carry-lookahead adder (``add_two``, depth 4) adds the last two rows.
        """
        columns: list[list[int]] = [[] for _ in range(width)]
        for row in rows:
            for j, lit in enumerate(row[:width]):
                if lit != ZERO:
                    columns[j].append(lit)
        c = const % (1 << width)
        for j in range(width):
            if c >> j & 1:
                columns[j].append(ONE)
        while max((len(col) for col in columns), default=0) > 2:
            height = max(len(col) for col in columns)
            block = 1 if height > 8 else max(1, (height - 1).bit_length())
            new: list[list[int]] = [[] for _ in range(width)]
            for start in range(0, width, block):
                stop = min(width, start + block)
                groups = [[(lit, 1 << (j - start))] for j in range(start, stop) for lit in columns[j]]
                span = (sum(len(columns[j]) << (j - start) for j in range(start, stop))).bit_length()
                bits = self.bits_of_sum(groups, min(span, width - start))
                for i, lit in enumerate(bits):
                    if lit != ZERO:
                        new[start + i].append(lit)
            columns = new
        a = [col[0] if col else ZERO for col in columns]
        b = [col[1] if len(col) > 1 else ZERO for col in columns]
        return self.add_two(a, b)

    def add_two(self, a: Sequence[int], b: Sequence[int]) -> list[int]:
        """Bits of a + b mod 2^n (depth 4): blocked carry lookahead with threshold gates.

        Blocks of B ≈ √n bits: block generate [block sum ≥ 2^B] and propagate [≥ 2^B − 1]
        (depth 1); the carry into block k is [Σ_{i<k} 2^i (G_i + P_i) ≥ 2^k] (depth 2, one gate);
        each sum bit is bit j of (the block's low j+1 bits of a + b + carry in), by ``bits_of_sum``.
        """
        n = len(a)
        if n == 0:
            return []
        block = max(1, int(n ** 0.5))
        starts = list(range(0, n, block))
        gens, props = [], []
        for s in starts:
            e = min(n, s + block)
            terms = [(x[j], 1 << (j - s)) for j in range(s, e) for x in (a, b)]
            gens.append(self.gate(terms, 1 << (e - s)))
            props.append(self.gate(terms, (1 << (e - s)) - 1))
        out = []
        for k, s in enumerate(starts):
            carry = self.gate([(g, 1 << i) for i in range(k) for g in (gens[i], props[i])], 1 << k)
            e = min(n, s + block)
            groups = [[(x[j], 1 << (j - s))] for j in range(s, e) for x in (a, b)] + [[(carry, 1)]]
            out.extend(self.bits_of_sum(groups, e - s))
        return out

    def compare_ge(self, terms: Sequence[Term], threshold: int) -> int:
        """[linear form ≥ threshold]: comparison of integers given by their bits (one gate)."""
        return self.gate(terms, threshold)

    def mux(self, select: int, when_one: Sequence[int], when_zero: Sequence[int]) -> list[int]:
        """Bitwise select ? when_one : when_zero (depth 2)."""
        return [self.gate([(self.and_([select, x]), 1), (self.and_([neg(select), y]), 1)], 1)
                for x, y in zip(when_one, when_zero)]

    def decode(self, bits: Sequence[int], count: int) -> list[int]:
        """One-hot of an unsigned integer given by its bits (LSB first): [value = v], v < count (depth 1)."""
        return [self.and_([x if v >> j & 1 else neg(x) for j, x in enumerate(bits)]) for v in range(count)]

    def encode(self, onehot: Sequence[int], nbits: int) -> list[int]:
        """Binary (LSB first) of the index of the single 1 of a one-hot vector (depth 1)."""
        return [self.or_([h for v, h in enumerate(onehot) if v >> j & 1]) for j in range(nbits)]

    def multiply(self, a: Sequence[int], b: Sequence[int]) -> list[int]:
        """Bits of a·b (unsigned, LSB first, len(a) + len(b) bits): AND layer, then ``add_rows``."""
        rows = [[ZERO] * i + [self.and_([x, y]) for x in a] for i, y in enumerate(b)]
        return self.add_rows(rows, 0, len(a) + len(b))

    def prefix_or_above(self, x: Sequence[int]) -> list[int]:
        """above[L] = OR of x[L+1:] (depth 1)."""
        return [self.or_(list(x[L + 1:])) for L in range(len(x))]

    def normalize_round(self, x: Sequence[int], p: int, sticky: Sequence[int] = (),
                        nonzero: int | None = None, min_lead: int = 0) -> tuple[list[int], list[Group], int, int]:
        """Round a non-negative integer X (bits x, LSB first) to p significant bits, ties to even.

        Returns (significand bits LSB first, exponent groups, exponent constant, nonzero literal):
        round_p(X) = M·2^(Σ terms + constant); the groups are the leading-position terms and the
        carry-out terms, each group exclusive, with M the p returned bits.  ``sticky`` literals
        stand for a non-zero remainder below bit 0 (allowed only when X ≥ 2^(p+1) whenever they are 1).
        Depth 3: OR(x above L) (1); for each leading position L (lead_L = x_L ∧ ¬OR(x above L),
        inlined into every AND) the carry c_j into window bit j — guard ∧ (lsb ∨ sticky) for j = 0,
        guard ∧ window bits below j otherwise — and c_j ∧ window bit j (2); every output bit is
        window bit + c_j − 2·(c_j ∧ window bit), summed over the one active L, in one gate (3).
        """
        n = len(x)
        above = self.prefix_or_above(x)
        lead = [[x[L], neg(above[L])] for L in range(n)]
        if nonzero is None:
            nonzero = self.or_(list(x))
        keep: list[list[Term]] = [[] for _ in range(p)]
        leads: Group = []
        carry_out: Group = []
        for L in range(min_lead, n):
            window = [x[L - p + 1 + j] if L - p + 1 + j >= 0 else ZERO for j in range(p)]
            leads.append((self.and_(lead[L]), L - (p - 1)))
            guard = L - p
            for j in range(p - 1):
                keep[j].append((self.and_(lead[L] + [window[j]]), 1))
            if guard < 0:
                continue
            lower = list(x[:guard]) + list(sticky)
            big = len(lower) + 1
            round_up = self.gate_if([(x[guard], 2 * big), (window[0], big)] + [(y, 1) for y in lower],
                                    2 * big + 1, lead[L])
            carries = [round_up] + [self.and_(lead[L] + [x[guard]] + window[:j]) for j in range(1, p + 1)]
            for j in range(p - 1):
                keep[j].append((carries[j], 1))
                keep[j].append((self.and_(lead[L] + [x[guard]] + window[:j + 1]), -2))
            carry_out.append((carries[p], 1))
        bits = [self.gate(keep[j], 1) for j in range(p - 1)] + [nonzero]
        return bits, [leads, carry_out], 0, nonzero
