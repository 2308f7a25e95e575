"""The models of SPEC §4; importing this package registers every model kind."""

from tc0sim.models import var, flowar, fast_flowar, var_release  # noqa: F401
