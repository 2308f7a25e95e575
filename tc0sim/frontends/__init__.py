"""Front ends: circuits traced from other frameworks' programs, beside the hand-lowered operators.

``FRONTENDS`` lists their kinds (the registry ``tc0sim.kinds`` collects it with the operators and
models). Importing this package imports no framework: the torch front end imports PyTorch only
when a model is traced (docs/torch.md).
"""

from tc0sim.frontends.torch import kind as _torch_kind
from tc0sim.ir.kind import Kind

FRONTENDS: tuple[Kind, ...] = (*_torch_kind.KINDS,)
"""Every front-end kind; ``tc0sim.kinds`` registers them."""
