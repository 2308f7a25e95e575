"""The depth interpreter: the critical path as Pareto-maximal vectors over the symbols, exact (docs/dag.md).

A path's length is a vector of counts over (d_std, d_sum, d_prod, d_exp, d_sqrt) (the VAR paper,
Definition 3.3 / Lemma 3.5, gives one symbolic depth per primitive). The result equals the
critical depth of the graph expanded to one node per gate (``tc0sim.interp.expand``), not a
tensor-level over-approximation. Anything that would not fit the memory budget is refused with
``DepthBudgetError`` naming the node, never answered with a bound — unless the caller opted in
with ``allow_upper_bound``: then that node becomes the node-level union of its operands (an upper
bound), ``exact`` is False and ``inexact_reasons`` says where.

One job per file: ``state`` (the factored state and its algebra), ``rules`` (one rule per
primitive), ``calls`` (shared bodies: argument classes and substitution), ``result`` (DepthResult,
witnesses and path groups) and ``analysis`` (the driver, ``depth``).
"""

from tc0sim.interp.depth.analysis import depth, depth_numeric
from tc0sim.interp.depth.result import DepthResult
from tc0sim.interp.depth.rules import DEPTH_RULES
from tc0sim.interp.depth.state import DEFAULT_MEMORY_BUDGET

__all__ = ["DEFAULT_MEMORY_BUDGET", "DEPTH_RULES", "DepthResult", "depth", "depth_numeric"]
