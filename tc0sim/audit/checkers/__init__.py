"""The ways of checking a claim: one module each, one entry of :data:`CHECKERS` each.

A claim's ``check`` names its entry; ``tc0sim.audit.audit`` dispatches on that name only. A new way
of checking is one module here exporting ``CHECKER`` (a ``tc0sim.audit.record.Checker``: the claim
fields it needs, its audit at the claim's own instances, its audit on a model file) and one line
below. On a model file the verdicts come grouped by checker, in the order of this table.
"""

from __future__ import annotations

from tc0sim.audit.checkers import approx, release, runtime, sweep, unchecked
from tc0sim.audit.record import Checker

CHECKERS: dict[str, Checker] = {
    "sweep": sweep.CHECKER,
    "runtime": runtime.CHECKER,
    "approx": approx.CHECKER,
    "release": release.CHECKER,
    "unchecked": unchecked.CHECKER,
}
"""Checker name (a claim's ``check``, or a value of its ``files``) → the way of checking."""
