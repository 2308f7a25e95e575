"""Measure depth and size of tc0sim's threshold circuits over p (and k), fit, check held-out points.

    python benchmarks/threshold_sizes.py [--quick] [--output docs/threshold_sizes.md]

Binary primitives at p = 2..12; div and sqrt at p = 2..24 (their depth grows with p); exp at every
certified p; prod at p = 2..12 for k = 2, 3, 4, 8 (k·p ≤ 64); sum at p = 2..12 for k = 2, 3, 4, 8, 16 and at p = 2..4 for
k = 24, 32 (the k = 32, p = 12 circuit alone has 1.2·10^7 wires and takes a minute to build).
About 3 minutes on a loaded 2-core machine.
Fits: first an exact polynomial in p through the first points (tc0sim.polyfit), checked at every
other point; where that fails (floors in the constructions make the counts piecewise), a least-
squares fit whose relative error is reported at held-out points that the fit did not see.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tc0sim import polyfit  # noqa: E402
from tc0sim.threshold.fp_circuits import build  # noqa: E402
from tc0sim.threshold.fp_digits import RADIX_BITS  # noqa: E402
from tc0sim.threshold.fp_exp import EXP_GUARD_BITS  # noqa: E402

BINARY = ("compare", "add", "sub", "mul", "max", "min", "relu")
PS = tuple(range(2, 13))
SUM_GRID = [(p, k) for k in (2, 3, 4, 8, 16) for p in PS] + [(p, k) for k in (24, 32) for p in range(2, 5)]
RECURRENCE_PS = tuple(range(2, 25))
RECURRENCE_TRAIN = 18
"""div and sqrt: size fits on p ≤ 18, checked at the held-out p = 19..24."""
SUM_HELD_OUT = {(12, 16), (10, 8), (4, 32), (3, 24), (11, 3)}


def measure(prim: str, p: int, k: int) -> dict[str, float]:
    start = time.perf_counter()
    st = build(prim, p, k).stats()
    return {**st.as_dict(), "seconds": time.perf_counter() - start}


def exact_fit(xs: list[int], ys: list[int]) -> str | None:
    """An exact polynomial through the first points that also matches every later point."""
    for degree in range(0, min(5, len(xs) - 2)):
        coeffs = polyfit.fit(xs[:degree + 1], ys[:degree + 1])
        if all(polyfit.value(coeffs, x) == y for x, y in zip(xs, ys)):
            return polyfit.text(coeffs, "p")
    return None


def lsq(features: np.ndarray, y: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least squares on log-scale residuals (relative error); returns coefficients and max
    relative errors on the training and the held-out points."""
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(features[train] * w[train, None], np.ones(train.sum()), rcond=None)
    pred = features @ coef
    rel = np.abs(pred - y) / y
    return coef, float(rel[train].max()), float(rel[~train].max()) if (~train).any() else 0.0


def poly_text(coef: np.ndarray, names: list[str]) -> str:
    return " + ".join(f"{c:.3g}·{n}" if n != "1" else f"{c:.3g}" for c, n in zip(coef, names) if abs(c) > 1e-9)


def recurrence_depth(prim: str, p: int) -> int:
    """The documented depth: ⌈(p + 2)/h⌉ + 2 (div), ⌈p/h⌉ + 2 (sqrt), h = RADIX_BITS."""
    bits = p + 2 if prim == "div" else p
    return -(-bits // RADIX_BITS) + 2


def recurrence_section(ps: list[int]) -> list[str]:
    """div and sqrt over p: depth against its formula at every p, size fits checked at held-out p."""
    rows = {(prim, p): measure(prim, p, 2) for prim in ("div", "sqrt") for p in ps}
    lines = ["", f"## div and sqrt (measured, p = {ps[0]}..{ps[-1]}; radix 2^{RADIX_BITS})", "",
             "| p | div depth | div gates | div wires | sqrt depth | sqrt gates | sqrt wires | weight bits (div, sqrt) |",
             "|---|---|---|---|---|---|---|---|"]
    for p in ps:
        d, r = rows["div", p], rows["sqrt", p]
        lines.append(f"| {p} | {int(d['depth'])} | {int(d['gates'])} | {int(d['wires'])} | {int(r['depth'])} | "
                     f"{int(r['gates'])} | {int(r['wires'])} | {int(d['max_weight_bits'])}, {int(r['max_weight_bits'])} |")
    lines.append("")
    x = np.array(ps, dtype=float)
    train = x <= RECURRENCE_TRAIN
    for prim in ("div", "sqrt"):
        off = [p for p in ps if p >= 3 and int(rows[prim, p]["depth"]) != recurrence_depth(prim, p)]
        formula = "⌈(p + 2)/3⌉ + 2" if prim == "div" else "⌈p/3⌉ + 2"
        lines.append(f"* {prim} depth = {formula} at every p ≥ 3 measured" + (f" except p = {off}" if off else "")
                     + " (not constant in p)"
                     + ("; sizes depend on p mod 3 (the top level's width), so one polynomial in p fits them "
                        "only to the error shown" if prim == "sqrt" else ""))
        for key in ("gates", "wires"):
            degree = 2 if key == "gates" else 4
            feats = np.stack([x ** d for d in range(degree + 1)], axis=1)
            y = np.array([rows[prim, p][key] for p in ps], dtype=float)
            if train.all() or train.sum() <= degree:
                continue
            coef, e_in, e_out = lsq(feats, y, train)
            names = ["1"] + [f"p^{d}" if d > 1 else "p" for d in range(1, degree + 1)]
            lines.append(f"* {prim} {key} ≈ {poly_text(coef, names)} (fit p ≤ {RECURRENCE_TRAIN}; "
                         f"held-out p > {RECURRENCE_TRAIN}: max rel. error {e_out:.1%})")
    return lines


def exp_prod_section(quick: bool) -> list[str]:
    """exp at every certified p (depth grows with the guard bits) and prod over p and k (k·p ≤ 64)."""
    lines = ["", "## exp (measured at every certified p)", "",
             "| p | guard bits g | depth | gates | wires | max weight bits |", "|---|---|---|---|---|---|"]
    for p, g in sorted(EXP_GUARD_BITS.items()):
        if quick and p > 8:
            continue
        r = measure("exp", p, 1)
        lines.append(f"| {p} | {g} | {int(r['depth'])} | {int(r['gates'])} | {int(r['wires'])} | {int(r['max_weight_bits'])} |")
    ks = (2, 3, 4, 8)
    ps = [p for p in PS if not quick or p <= 8]
    lines += ["", "## prod of k terms (measured; cells depth / gates / wires, built where k·p ≤ 64)", "",
              "| k \\ p | " + " | ".join(str(p) for p in ps) + " |", "|---|" + "---|" * len(ps)]
    for k in ks:
        cells = []
        for p in ps:
            r = measure("prod", p, k) if k * p <= 64 else None
            cells.append(f"{int(r['depth'])} / {int(r['gates'])} / {int(r['wires'])}" if r else "")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="p ≤ 8 and k ≤ 8 only")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    ps = [p for p in PS if not args.quick or p <= 8]
    lines = ["<!-- generated by benchmarks/threshold_sizes.py; do not edit -->", ""]
    lines += ["## Binary and unary primitives (measured, p = 2..12)", "",
              "| primitive | depth | gates at p = 2, 4, 8, 12 | wires at p = 2, 4, 8, 12 | max weight bits at p = 12 | gates: fit | wires: fit |",
              "|---|---|---|---|---|---|---|"]
    for prim in BINARY:
        rows = {p: measure(prim, p, 2) for p in ps}
        depths = sorted({int(r["depth"]) for r in rows.values()})
        fits = []
        for key, degree in (("gates", 2), ("wires", 4 if prim == "mul" else 3)):
            ys = [int(rows[p][key]) for p in ps]
            exact = exact_fit(ps, ys)
            if exact:
                fits.append(f"exact: {exact} (all p)")
                continue
            x = np.array(ps, dtype=float)
            feats = np.stack([x ** d for d in range(degree + 1)], axis=1)
            train = x <= max(ps) - 3
            coef, e_in, e_out = lsq(feats, np.array(ys, dtype=float), train)
            names = ["1"] + [f"p^{d}" if d > 1 else "p" for d in range(1, degree + 1)]
            fits.append(f"≈ {poly_text(coef, names)} (fit p ≤ {max(ps) - 3}; held-out p > {max(ps) - 3}: "
                        f"max rel. error {e_out:.1%})")
        pick = [p for p in (2, 4, 8, 12) if p in rows]
        lines.append(f"| {prim} | {', '.join(map(str, depths))} | {', '.join(str(int(rows[p]['gates'])) for p in pick)} | "
                     f"{', '.join(str(int(rows[p]['wires'])) for p in pick)} | {int(rows[max(ps)]['max_weight_bits'])} | {fits[0]} | {fits[1]} |")
    lines += recurrence_section([p for p in RECURRENCE_PS if not args.quick or p <= 12])
    lines += exp_prod_section(args.quick)
    grid = [(p, k) for p, k in SUM_GRID if not args.quick or (p <= 8 and k <= 8)]
    data = {}
    for p, k in grid:
        data[p, k] = measure("sum", p, k)
        print(f"sum p={p} k={k}: {data[p, k]}", file=sys.stderr, flush=True)
    lines += ["", "## sum of k terms (measured)", "",
              "| k \\ p | " + " | ".join(str(p) for p in ps) + " |", "|---|" + "---|" * len(ps)]
    for k in sorted({k for _, k in grid}):
        cells = [f"{int(data[p, k]['depth'])} / {int(data[p, k]['gates'])}" if (p, k) in data else "" for p in ps]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Cells: depth / gates. Wires (Σ fan-in) and weight widths:")
    lines.append("")
    lines.append("| k \\ p | " + " | ".join(str(p) for p in ps) + " |")
    lines.append("|---|" + "---|" * len(ps))
    for k in sorted({k for _, k in grid}):
        cells = [f"{int(data[p, k]['wires'])} ({int(data[p, k]['max_weight_bits'])} b)" if (p, k) in data else "" for p in ps]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    keys = sorted(data)
    held = np.array([key in SUM_HELD_OUT for key in keys])
    P = np.array([p for p, _ in keys], dtype=float)
    K = np.array([k for _, k in keys], dtype=float)
    names = ["1", "p", "k", "pk", "k²", "pk²", "p²k²"]
    feats = np.stack([np.ones_like(P), P, K, P * K, K * K, P * K * K, P * P * K * K], axis=1)
    lines += ["", "Least-squares fits over the sum grid (held out: "
              + ", ".join(f"p={p} k={k}" for p, k in sorted(SUM_HELD_OUT) if (p, k) in data) + "):", ""]
    for key in ("gates", "wires"):
        y = np.array([data[t][key] for t in keys], dtype=float)
        f = feats if key == "gates" else np.concatenate([feats, (P ** 2 * K ** 3)[:, None]], axis=1)
        n = names if key == "gates" else names + ["p²k³"]
        coef, e_in, e_out = lsq(f, y, ~held)
        lines.append(f"* {key} ≈ {poly_text(coef, n)}: max relative error {e_in:.1%} on the fitted points, "
                     f"{e_out:.1%} on the held-out points")
    depths = sorted({int(v["depth"]) for v in data.values()})
    lines.append(f"* depth: {', '.join(map(str, depths))} over the whole grid (by k: "
                 + "; ".join(f"k={k}: {sorted({int(data[p, kk]['depth']) for p, kk in data if kk == k})}" for k in sorted({k for _, k in grid})) + ")")
    seconds = sum(v["seconds"] for v in data.values())
    lines.append(f"* building the {len(data)} sum circuits took {seconds:.0f} s")
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
