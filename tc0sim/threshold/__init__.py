"""Gate-level threshold circuits for the F_p primitives: IR, simulator, constructions, verification."""
