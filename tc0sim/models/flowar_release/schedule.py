"""The official FlowAR sampler's schedule, exactly: the Euler time points, the guidance ramp over
the scales and the time embedding's sinusoidal features."""

from __future__ import annotations

from fractions import Fraction

import gmpy2
import numpy as np

from tc0sim.models.flowar_release.config import MAX_PERIOD, TIME_FEATURES
from tc0sim.ops.constants import cos_sin


def linspace(start: Fraction, end: Fraction, steps: int) -> list[Fraction]:
    """``steps`` equally spaced exact points from start to end (both included)."""
    if steps == 1:
        return [start]
    return [start + (end - start) * Fraction(i, steps - 1) for i in range(steps)]


def time_points(steps: int) -> list[Fraction]:
    """The time points of the official ``euler_sampler``, as exact rationals: linspace(1, 0.3, n//2) then
    linspace(0.25, 0, n//2 + 1), or linspace(1, 0, 51) for n = 50. (PyTorch's float64 linspace may
    differ from these in the last bit, depending on the CPU's vector width.)"""
    if steps == 50:
        return linspace(Fraction(1), Fraction(0), 51)
    return linspace(Fraction(1), Fraction(3, 10), steps // 2) + linspace(Fraction(1, 4), Fraction(0), steps // 2 + 1)


def time_index(t: Fraction) -> int:
    """``(t·1000).long()`` of the time the velocity net receives: float64, then float32, times 1000 in
    float32, truncated."""
    return int(np.float32(np.float32(float(t)) * np.float32(1000)))


def guidance_scale(cfg: Fraction, scale: int, scales: int) -> Fraction:
    """The guidance of scale index ``scale`` (0-based): 1 + (cfg − 1)·scale/(K − 1), ramping over the scales."""
    return 1 + (cfg - 1) * Fraction(scale, scales - 1)


def guided(cfg: Fraction, scale: int, scales: int, t: Fraction, guidance: Fraction) -> bool:
    """Whether the sampler guides this step: guidance scale > 1 and 0 ≤ t ≤ guidance."""
    return guidance_scale(cfg, scale, scales) > 1 and 0 <= t <= guidance


def time_features(index: int) -> list[Fraction]:
    """The 256 sinusoidal features [cos(n f_j), sin(n f_j)], f_j = 10⁴^(−j/128), of time index n."""
    half = TIME_FEATURES // 2
    with gmpy2.context(gmpy2.get_context(), precision=320):
        angles = [index * gmpy2.exp(-gmpy2.log(MAX_PERIOD) * j / half) for j in range(half)]
    cos, sin = cos_sin(angles)
    return cos + sin
