"""tc0sim: circuit-complexity simulator and depth accountant for VAR and FlowAR."""

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {"trace": "tc0sim.frontends.torch"}
"""Names re-exported from modules above this one, imported when first read (``tc0sim.trace``
imports the front end, which imports PyTorch only when it traces)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tc0sim' has no attribute {name!r}")
