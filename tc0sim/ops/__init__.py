"""The operator catalogue of SPEC §3; importing this package registers every operator kind."""

from tc0sim.ops import matmul  # noqa: F401
from tc0sim.ops import attention  # noqa: F401
from tc0sim.ops import conv2d  # noqa: F401
from tc0sim.ops import downsample  # noqa: F401
from tc0sim.ops import ffn  # noqa: F401
from tc0sim.ops import layernorm  # noqa: F401
from tc0sim.ops import mlp  # noqa: F401
from tc0sim.ops import upsample  # noqa: F401
from tc0sim.ops import flow  # noqa: F401
from tc0sim.ops import flow_matching  # noqa: F401
from tc0sim.ops import aattc  # noqa: F401
from tc0sim.ops import resize  # noqa: F401
from tc0sim.ops import activations  # noqa: F401
from tc0sim.ops import norms  # noqa: F401
from tc0sim.ops import linear  # noqa: F401
