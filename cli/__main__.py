"""``python -m cli`` runs the tc0sim command line."""

from cli.main import main

main(prog_name="tc0sim")
