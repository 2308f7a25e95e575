"""Reading what a command is given besides the model file: .npz inputs and checkpoints.

``inputs`` reads .npz archives (every member's header checked before its data); ``checkpoints``
binds the tensors of PyTorch or safetensors checkpoints to a graph's weight inputs by name.
"""

from tc0sim.io.checkpoints import bind_weights, read_checkpoint
from tc0sim.io.inputs import read_archive, read_inputs

__all__ = ["bind_weights", "read_archive", "read_checkpoint", "read_inputs"]
