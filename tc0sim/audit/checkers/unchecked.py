"""A claim nothing on a DAG can check (an arithmetic-level lemma, an approximation-error claim, …).

The verdict is ``unchecked`` with the registry's reason (the claim's ``unchecked`` field).
"""

from __future__ import annotations

from collections.abc import Sequence

from tc0sim.audit.instances import DEFAULT_NS
from tc0sim.audit.record import Checker, Claim, Verdict, claimed_text, finish


def own(claim: Claim, ns: Sequence[int] = DEFAULT_NS, gates_p: int | None = None) -> Verdict:
    """``unchecked``, with the registry's reason."""
    verdict = Verdict(claim.id, "unchecked", claimed_text(claim), "—", claim=claim)
    verdict.notes.append(claim.unchecked or "the registry gives no kind to build")
    return finish(claim, verdict)


CHECKER = Checker(frozenset({"unchecked"}), own, None)
