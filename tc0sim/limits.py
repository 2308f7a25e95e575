"""Every bound tc0sim puts on its input, in one place (documented in docs/cli.md and docs/model_files.md).

A value beyond a limit is refused with a one-line ConfigError naming the file, key or option and
the limit; none of these is a silent clamp. The build budget (tensor nodes, estimated bytes) and
the evaluation gate limit can be raised from the command line; the others are fixed.
"""

from __future__ import annotations

MAX_PRECISION = 10**6
"""Largest significand width p (bits) accepted by ``eval --precision`` and a file's ``precision:``."""

MIN_PRECISION = 2
"""Smallest p: F_p needs a leading bit and one more (m in [2^(p−1), 2^p))."""

MAX_SEED = 2**63 - 1
"""Largest ``seed:`` of a model file."""

MAX_FILE_BYTES = 256_000
"""Longest model file read, in characters: PyYAML constructs some 50,000 nodes a second, so this keeps
reading any file to a few seconds (a 20,000-block decoder list is 160,000 characters)."""

MAX_YAML_NESTING = 50
"""Deepest nesting of YAML collections (lists and mappings) in a model file."""

MAX_YAML_NODES = 10**6
"""Largest number of YAML nodes of a model file with every alias expanded ("billion laughs")."""

MAX_YAML_INT_CHARS = 40
"""Longest integer literal of a model file (digits, sign, base prefix and '_' included)."""

MAX_NUMBER_DIGITS = 100
"""Most digits of a decimal or rational number on the command line (e.g. ``--set d_std=2.5``)."""

MAX_NUMBER_EXPONENT = 100
"""Largest absolute exponent of a number on the command line (``1e100`` is accepted, ``1e101`` not)."""

MAX_SWEEP_POINTS = 100
"""Most n values of ``size --n`` or a file's ``sweep:``."""

MAX_VERIFY_POINTS = 20
"""Most extra n values ``size --verify`` builds."""

MAX_CHANNELS = 2**16
"""Largest width, head count, channel count, codebook or class count of a released model's params
(the released models stay below 5,000): the interpreters keep arrays as long as a concatenated axis,
which the build budget, counting nodes, does not see."""

DEFAULT_MAX_NODES = 10**6
"""Default build budget: tensor nodes of one graph (``--max-nodes`` raises it)."""

DEFAULT_MAX_BYTES = 2 * 10**9
"""Default build budget: estimated bytes of one graph, or of one evaluation (``--max-memory``)."""

MAX_ERROR_CHARS = 400
"""Longest error line printed by the command line; a longer message is cut with '…'."""

MAX_APPROX_TOKENS = 10**6
"""Most tokens N·n of the embeddings ``tc0sim approx`` reads (exact rows are Python integers)."""

MAX_APPROX_EVALUATIONS = 200_000
"""Most bit-exact layer evaluations (sequences × precisions) of one ``approx contextual`` report."""

MAX_APPROX_SWEEP_PRECISION = 4096
"""Largest p of ``approx contextual`` (``--precision`` and ``--sweep-precision``): δ > 0 needs a few
hundred bits at most, and an exp at 10^6 bits costs a good part of a second."""

MAX_APPROX_GATES = 5 * 10**7
"""Most gate evaluations (sequences × precisions × gates of the layer) of one ``approx contextual``
report, as ``eval``'s default gate limit."""

DEFAULT_MAX_CHAIN_GATES = 200_000
"""Largest ``var`` model (gates) ``approx perturbation`` and the audit cut into a layer chain by
default: the hybrids cost about m²/2 layer evaluations at 256 bits (``--max-gates`` raises it)."""

MAX_ARCHIVE_VALUES = 10**8
"""Most values of one array of an .npz archive read by ``tc0sim approx`` (checked on its header)."""

VERIFY_POINTS = 2
"""How many extra n values ``size_report`` builds by default to verify a fitted polynomial (here,
not in tc0sim.reports, so that ``tc0sim size --help`` shows it without importing the reports)."""

SUMMARY_ROWS = 12
"""A long table keeps this many rows at each end; the rows between are summarised in one row."""

MAX_MEMORY_BUDGET = 2**50
"""Largest ``depth --memory-budget`` (1 PiB): any larger size is a typing slip, not a machine."""

MAX_WORKERS = 1024
"""Most local Dask worker processes ``eval --workers`` starts."""

MAX_CHUNK = 10**12
"""Largest ``eval --chunk`` (product elements held at once)."""

MAX_WITNESSES = 10**6
"""Most witness paths ``depth --witnesses`` asks for (``all`` takes every critical vector)."""

MAX_APPROX_DEGREE = 16
"""Largest polynomial degree g of ``approx perturbation --replace aattc``: the aattc kernel has
C(d+g, g) monomials, so its graph grows faster than any build budget sees before it is built."""

MAX_REFERENCE_PRECISION = 4096
"""Largest ``approx perturbation --reference`` (bits); the reference is also evaluated at twice it."""

MAX_THRESHOLD_SAMPLES = 70_000
"""Most seeded cases ``threshold --samples`` verifies (the exhaustive verification's own limit)."""

PLOT_SUFFIXES = (".png", ".pdf", ".svg")
"""The picture formats ``--plot`` writes (by the file name's suffix)."""

MAX_THRESHOLD_PRECISION = 24
"""Largest p ``tc0sim threshold`` builds (the sum circuit grows as k²·p²; p = 24 already takes seconds)."""

MAX_THRESHOLD_ARITY = 64
"""Most terms of a ``tc0sim threshold`` sum or prod circuit."""

GRAPH_SUFFIXES = (".graphml", ".dot", ".json")
"""The export formats ``tc0sim graph --output`` writes (by the file name's suffix)."""
