"""Model files (docs/cli.md): a YAML mapping naming a ``kind``, its ``dims`` and ``params``, and how to draw inputs.

Read with ``yaml.safe_load`` only (``!!python/...`` tags are refused), then validated key by key; every
error is a ConfigError naming the file, the key and what was expected. A dim is a positive integer
or an integer expression in ``n`` (``tc0sim.expr``: ``"n"``, ``"2*n"``, ``"n//4"``), resolved by
``ModelSpec.dims_at(n)``. Configuration keys of a kind (its params) may be given under ``params:``
or at the top level of the file, not both.

One module per step: ``reader`` (the file's bytes and the bounded YAML parse), ``keys`` (the
top-level keys), ``schema`` (dims and params against the kind's schema, expressions in n), ``spec``
(``ModelSpec``, resolved at n and built) and ``messages`` (how values are named in errors).
"""

from tc0sim.modelfile.keys import from_mapping
from tc0sim.modelfile.reader import MAX_FILE_READ, load_model, loads_model
from tc0sim.modelfile.spec import TOP_LEVEL_KEYS, ModelSpec

__all__ = ["ModelSpec", "load_model", "loads_model", "from_mapping", "TOP_LEVEL_KEYS", "MAX_FILE_READ"]
