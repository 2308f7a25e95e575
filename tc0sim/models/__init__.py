"""The models of SPEC §4; importing this package registers every model kind."""

from tc0sim.models import var, flowar, fast_flowar  # noqa: F401
from tc0sim.models import flowar_release  # noqa: F401
