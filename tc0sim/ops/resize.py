"""PyTorch-exact resizing of a feature map [h, w, c] to any output size, as constant contractions.

* ``bicubic``: ``F.interpolate(mode="bicubic", align_corners=False)`` — four border-clamped taps
  per axis with Keys' weights (a = −3/4), held as exact constants (lowered by ``upsample``, which
  already implements PyTorch's rule for any pair of sizes, up or down, without antialiasing).
* ``area``: ``F.interpolate(mode="area")``, i.e. adaptive average pooling: output row i averages
  input rows ``⌊i·h/h'⌋ … ⌈(i+1)·h/h'⌉ − 1`` (windows may overlap or differ in length when h' does
  not divide h). Each output is ONE ⊕ of its window, divided by the window's element count
  (depth d_sum + d_std), as PyTorch sums a window and divides by its size.
* ``nearest``: ``F.interpolate(mode="nearest")``: output row i reads row ``⌊i·h/h'⌋``; pure wiring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tc0sim.errors import ConfigError, GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.ops.upsample import upsample

REF = "PyTorch F.interpolate (bicubic, area, nearest)"


def _check_map(name: str, x: Tensor, out_h: int, out_w: int) -> None:
    if x.ndim != 3:
        raise GraphError(f"{name}: expected a feature map [h, w, c], got shape {x.shape}")
    if out_h < 1 or out_w < 1:
        raise ConfigError(f"{name}: output size must be positive, got {out_h}×{out_w}")


def bicubic(b: Builder, x: Tensor, out_h: int, out_w: int, name: str = "bicubic") -> Tensor:
    """X[h, w, c] → Y[out_h, out_w, c] by PyTorch's bicubic rule (2d_std + d_sum)."""
    _check_map(name, x, out_h, out_w)
    return upsample(b, x, out_h, out_w, name=name)


def area_windows(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Window indices ``[out_size, width]`` (index ``in_size`` = a zero pad) and element counts.

    Adaptive average pooling: window i is ``[⌊i·in/out⌋, ⌈(i+1)·in/out⌉)``."""
    starts = [(i * in_size) // out_size for i in range(out_size)]
    stops = [-(-((i + 1) * in_size) // out_size) for i in range(out_size)]
    width = max(e - s for s, e in zip(starts, stops))
    index = np.full((out_size, width), in_size, dtype=np.int64)
    for i, (s, e) in enumerate(zip(starts, stops)):
        index[i, : e - s] = np.arange(s, e)
    return index, np.array([e - s for s, e in zip(starts, stops)], dtype=np.int64)


def area(b: Builder, x: Tensor, out_h: int, out_w: int, name: str = "area") -> Tensor:
    """X[h, w, c] → Y[out_h, out_w, c]: ⊕ of each window, then ÷ its element count (d_sum + d_std)."""
    _check_map(name, x, out_h, out_w)
    h, w, c = x.shape
    rows, row_counts = area_windows(h, out_h)
    cols, col_counts = area_windows(w, out_w)
    with b.scope(name, REF):
        padded = b.pad(x, ((0, 1 if rows.max() == h else 0), (0, 1 if cols.max() == w else 0), (0, 0)))
        windows = b.gather(b.gather(padded, rows, axis=0), cols, axis=2)  # [out_h, rh, out_w, rw, c]
        sums = b.sum(windows, axis=(1, 3))
        if row_counts.max() == 1 and col_counts.max() == 1:
            return sums
        counts = b.constant((row_counts[:, None] * col_counts[None, :]).reshape(out_h, out_w, 1))
        return b.div(sums, counts)


def nearest(b: Builder, x: Tensor, out_h: int, out_w: int, name: str = "nearest") -> Tensor:
    """X[h, w, c] → Y[out_h, out_w, c]: row i reads ⌊i·h/out_h⌋ (PyTorch's 'nearest'); wiring only."""
    _check_map(name, x, out_h, out_w)
    h, w, _ = x.shape
    with b.scope(name, REF):
        rows = b.gather(x, (np.arange(out_h) * h) // out_h, axis=0)
        return b.gather(rows, (np.arange(out_w) * w) // out_w, axis=1)


def _builder(fn: Any) -> Any:
    def build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
        x = b.input("X", (dims["h"], dims["w"], dims["c"]))
        return {"out": fn(b, x, dims["out_h"], dims["out_w"])}

    return build


KINDS: tuple[Kind, ...] = tuple(
    Kind(fn.__name__, ("h", "w", "c", "out_h", "out_w"), _builder(fn), REF, doc=doc)
    for fn, doc in (
        (bicubic, "PyTorch bicubic resize to out_h × out_w (align_corners=False, a = −3/4, border clamped)"),
        (area, "PyTorch area resize (adaptive average pooling) to out_h × out_w: ⊕ of each window ÷ its size"),
    )
)
"""The kinds this module defines (listed by its package's __init__)."""
