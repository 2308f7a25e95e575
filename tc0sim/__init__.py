"""tc0sim: circuit-complexity simulator and depth accountant for VAR and FlowAR."""

__version__ = "0.1.0"
