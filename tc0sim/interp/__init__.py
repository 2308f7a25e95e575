"""The interpreters of the tensor DAG (depth, size, evaluate, expand, export).

Importing the package registers the evaluate engines of tc0sim.interp.fast and
tc0sim.interp.parallel with tc0sim.interp.evaluate.
"""

from tc0sim.interp import fast, parallel  # noqa: F401
