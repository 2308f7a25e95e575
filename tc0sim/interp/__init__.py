"""The interpreters of the tensor DAG (depth, size, evaluate, expand, export); the evaluation
engines themselves are in tc0sim.engines."""
