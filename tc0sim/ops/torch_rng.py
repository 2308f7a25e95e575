"""The random inputs of the official VAR and FlowAR samplers, drawn from torch's own CPU generator
(docs/samplers.md).

``autoregressive_infer_cfg(B, label_B, g_seed)`` of the released VAR code (FoundationVision/VAR
@78b9539, models/var.py) seeds one ``torch.Generator`` and consumes it in this order:

1. ``label_B = None``: ``torch.multinomial(uniform_prob, B, replacement=True)`` over the classes
   (``uniform_prob`` is float32 ``1/classes``, shape ``(1, classes)``);
2. at each scale k, ``torch.multinomial(probs, 1)`` on probs of shape ``(B·pn_k², V)``: one
   ``exponential_`` over that shape, in row-major order, in the probs' dtype;
3. with ``more_smooth``, right after step 2 of the same scale, ``exponential_`` over ``(B, pn_k², V)``
   and ``g = −log E`` in that dtype (``gumbel_softmax_with_rng``).

FlowAR's ``sample_tokens`` (wangqiang9/FlowAR @5745a96, models/flowar.py) draws nothing but the
flow noise: at each scale k, ``torch.randn([B', s_k², 16])`` on the global CPU generator, with
``B' = 2B`` (conditional rows, then the null-class rows) when ``cfg != 1`` and ``B' = B`` otherwise.

This module replays those orders by calling the same torch functions on a generator seeded alike, so
the numbers are torch's own. torch is imported only when a function here is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError

DTYPES = ("float32", "float64")
"""The dtypes the official model runs in on CPU (the draws follow the probs' dtype)."""


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ConfigError("drawing the official random inputs needs PyTorch (pip install 'tc0sim[test]')") from None
    return torch


def generator(seed: int) -> Any:
    """``torch.Generator().manual_seed(seed)`` (CPU), as the official ``self.rng.manual_seed(g_seed)``."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= int(seed) < 2**64:
        raise ConfigError(f"torch seed must be an integer in [0, 2^64), got {seed!r}")
    return _torch().Generator().manual_seed(int(seed))


def draw_dtype(p: int) -> str:
    """The dtype of the official run that precision p reproduces: float32 (the released models) for
    p ≤ 24, float64 (the model run in double) above; the draws follow it (docs/samplers.md)."""
    return "float32" if p <= 24 else "float64"


def _dtype(dtype: str) -> Any:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    return getattr(_torch(), dtype)


def exponentials(gen: Any, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
    """The Exp(1) numbers ``torch.multinomial(probs, 1, generator=gen)`` draws for probs of ``shape``."""
    return _torch().empty(tuple(shape), dtype=_dtype(dtype)).exponential_(generator=gen).numpy().astype(np.float64)


def gumbels(gen: Any, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
    """``−log E`` with ``E = exponential_`` over ``shape`` (the official ``gumbel_softmax_with_rng``)."""
    e = _torch().empty(tuple(shape), dtype=_dtype(dtype)).exponential_(generator=gen)
    return (-e.log()).numpy().astype(np.float64)


def official_exponentials(seed: int, shape: Sequence[int] | Sequence[Sequence[int]],
                          dtype: str = "float32") -> np.ndarray | list[np.ndarray]:
    """Exp(1) numbers from ``torch.Generator().manual_seed(seed)`` for one probs shape, or for several
    shapes drawn in turn on the same generator (one per scale, as the official loop); float64 arrays."""
    gen = generator(seed)
    if all(isinstance(d, (int, np.integer)) for d in shape):
        return exponentials(gen, shape, dtype)  # type: ignore[arg-type]
    return [exponentials(gen, s, dtype) for s in shape]  # type: ignore[union-attr]


def normals(gen: Any, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
    """``torch.randn(shape, generator=gen)`` in ``dtype`` (torch's own normal sampler), as float64."""
    return _torch().randn(tuple(shape), generator=gen, dtype=_dtype(dtype)).numpy().astype(np.float64)


def flowar_noise(seed: int, batch: int, scales: Sequence[int], channels: int = 16, guided: bool = True,
                 dtype: str = "float32") -> list[np.ndarray]:
    """The flow noise of FlowAR's ``sample_tokens`` after ``torch.manual_seed(seed)``: per scale one
    ``randn([B', s², channels])`` in turn (``B' = 2B`` with guidance, ``cfg != 1``; else B), of which
    the conditional rows ``[B, s², channels]`` are returned (the null-class rows never reach the image)."""
    if batch < 1 or channels < 1 or not scales:
        raise ConfigError("flowar_noise: batch and channels must be positive and scales non-empty")
    gen, rows = generator(seed), 2 * batch if guided else batch
    return [normals(gen, (rows, s * s, channels), dtype)[:batch] for s in scales]


@dataclass(frozen=True)
class OfficialDraws:
    """The random inputs of one ``autoregressive_infer_cfg`` call, per scale (rows ``[B·pn², V]``)."""

    labels: np.ndarray
    exponentials: list[np.ndarray]
    gumbels: list[np.ndarray] | None


def official_draws(seed: int, batch: int, scales: Sequence[int], vocab: int, classes: int = 1000,
                   label: int | None = None, dtype: str = "float32", more_smooth: bool = False) -> OfficialDraws:
    """Labels ``[B]`` (the null class ``classes`` for label < 0) and every scale's draws, in the official order."""
    if batch < 1 or vocab < 1 or classes < 1 or not scales:
        raise ConfigError("official_draws: batch, vocab and classes must be positive and scales non-empty")
    if label is not None and label >= classes:
        raise ConfigError(f"label {label} is not a class (0 … {classes - 1}, or negative for the null class)")
    torch = _torch()
    gen = generator(seed)
    if label is None:
        uniform = torch.full((1, classes), 1.0 / classes, dtype=torch.float32)
        labels = torch.multinomial(uniform, num_samples=batch, replacement=True, generator=gen).reshape(batch).numpy()
    else:
        labels = np.full(batch, classes if label < 0 else label, dtype=np.int64)
    qs, gs = [], [] if more_smooth else None
    for pn in scales:
        qs.append(exponentials(gen, (batch * pn * pn, vocab), dtype))
        if gs is not None:
            gs.append(gumbels(gen, (batch, pn * pn, vocab), dtype).reshape(batch * pn * pn, vocab))
    return OfficialDraws(labels.astype(np.int64), qs, gs)


__all__: Sequence[str] = ["DTYPES", "generator", "draw_dtype", "exponentials", "gumbels", "official_exponentials",
                          "normals", "flowar_noise", "OfficialDraws", "official_draws"]
