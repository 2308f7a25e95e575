"""The models of docs/models.md: every model kind, listed once in ``MODELS``."""

from tc0sim.ir.kind import Kind
from tc0sim.models.common import Official
from tc0sim.models import fast_flowar, flowar, flowar_release, var, var_release

MODELS: tuple[Kind, ...] = (*var.KINDS, *flowar.KINDS, *fast_flowar.KINDS, *var_release.KINDS, *flowar_release.KINDS)
"""Every model kind; ``tc0sim.kinds`` registers them. A new model module adds one entry here."""

OFFICIAL: dict[str, Official] = {"var_release": var_release.OFFICIAL, "flowar_release": flowar_release.OFFICIAL}
"""The released kinds' official surroundings (random stream, saved image), by kind name."""
