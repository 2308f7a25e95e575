"""The fast engine (p <= 53): rules in ``rules.py``, elementwise nodes in ``maps.py``, ⊕/⊗ in
``reduce.py``, work arrays and the memory model in ``memory.py``, the steps of 26 <= p <= 53 in
``wide.py``, the run and its variants per precision in ``engine.py``."""

from tc0sim.engines.fast.engine import FAST, VARIANTS, FastRun, WideRun
from tc0sim.engines.fast.memory import DEFAULT_CHUNK, FastMemory
from tc0sim.engines.fast.rules import FAST_RULES, FastRule

__all__ = ["DEFAULT_CHUNK", "FAST", "FAST_RULES", "FastMemory", "FastRule", "FastRun", "VARIANTS", "WideRun"]
