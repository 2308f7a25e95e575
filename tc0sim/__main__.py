"""``python -m tc0sim`` runs the tc0sim command line."""

from tc0sim.cli.main import console

console()
