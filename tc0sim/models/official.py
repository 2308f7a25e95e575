"""What the official code does around a released model's circuit: its random stream and its image file.

One table keyed by kind (``OFFICIAL``): ``seeded(params, seed, p)`` gives the circuit's random inputs
drawn as the official sampler draws them from ``torch.Generator().manual_seed(seed)`` (``tc0sim eval
--torch-seed``), and ``image``/``to_bytes`` turn the named output into the 8-bit image the official
code saves (``tc0sim eval --output image.png``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.models import var_release

Seeded = Callable[[Mapping[str, Any], int, int], "dict[str, np.ndarray]"]


def _round_half_up(unit: np.ndarray) -> np.ndarray:
    """VAR: the image in [0, 1] (``add_(1).mul_(0.5)`` is in the circuit); torchvision's ``save_image``:
    ``mul(255).add_(0.5).clamp_(0, 255)`` then truncation to uint8."""
    return np.floor(np.clip(unit * 255 + 0.5, 0, 255)).astype(np.uint8)


def _flowar_bytes(image: np.ndarray) -> np.ndarray:
    """FlowAR (MAR's saver): ``(x + 1)/2``, ``np.round(np.clip(·255, 0, 255))`` (half to even), then
    ``[:, :, ::-1]`` to BGR for ``cv2.imwrite``, which writes the file as RGB again: the RGB values."""
    return np.round(np.clip((image + 1) / 2 * 255, 0, 255)).astype(np.uint8)


@dataclass(frozen=True)
class Official:
    """A released kind's official surroundings: its seeded inputs (None: no torch stream wired) and its image."""

    seeded: Seeded | None
    image: str
    to_bytes: Callable[[np.ndarray], np.ndarray]


OFFICIAL: dict[str, Official] = {
    "var_release": Official(var_release.official_inputs, "image", _round_half_up),
    "flowar_release": Official(None, "out", _flowar_bytes),
}
"""The released kinds, by kind name."""


__all__: Sequence[str] = ["Official", "OFFICIAL"]
