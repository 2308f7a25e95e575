"""The fast engine (p <= 25): rules in ``rules.py``, elementwise nodes in ``maps.py``, ⊕/⊗ in
``reduce.py``, work arrays and the memory model in ``memory.py``, the run in ``engine.py``."""

from tc0sim.engines.fast.engine import FAST, FastRun
from tc0sim.engines.fast.memory import DEFAULT_CHUNK, FastMemory
from tc0sim.engines.fast.rules import FAST_RULES, FastRule

__all__ = ["DEFAULT_CHUNK", "FAST", "FAST_RULES", "FastMemory", "FastRule", "FastRun"]
