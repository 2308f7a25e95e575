"""The ``--weights`` option's checkpoints: read and bound to a graph by ``tc0sim.io.checkpoints``."""

from tc0sim.io.checkpoints import bind_weights as load_weights
from tc0sim.io.checkpoints import parse_weight_arg, read_checkpoint

__all__ = ["load_weights", "parse_weight_arg", "read_checkpoint"]
