"""Claim verdicts (``tc0sim.audit.verdict``): tight, slack with the smallest slack, violated."""

import pytest

from tc0sim.audit.verdict import claim_verdict
from reference import depth_vector as V


@pytest.mark.parametrize(
    "critical, claim, expected",
    [
        ([V(6, 6, 0, 1, 0)], V(6, 6, 0, 1, 0), ("tight", None)),
        ([V(2, 1, 0, 0, 0), V(1, 3, 0, 0, 0)], V(2, 3, 0, 0, 0), ("slack", V(1, 0, 0, 0, 0))),
        ([V(2, 1, 0, 0, 0), V(1, 3, 0, 0, 0)], V(1, 3, 0, 0, 0), ("violated", V(2, 1, 0, 0, 0))),
        ([V(2, 1, 0, 0, 0), V(1, 3, 0, 0, 0)], V(5, 5, 0, 0, 0), ("slack", V(4, 2, 0, 0, 0))),
        ([V(0, 0, 0, 1, 0)], V(9, 9, 9, 0, 9), ("violated", V(0, 0, 0, 1, 0))),
        ([V(1, 0, 0, 0, 0), V(0, 0, 0, 0, 1)], V(1, 0, 0, 0, 1), ("slack", V(0, 0, 0, 0, 1))),
    ],
)
def test_claim_verdict(critical, claim, expected):
    """Expected values worked by hand: a claim bounds every critical vector componentwise; the
    slack is the claim minus the critical vector nearest to it (smallest total, then smallest)."""
    assert claim_verdict(critical, claim) == expected


def test_tight_needs_an_equal_vector_else_the_nearest_gives_the_slack():
    assert claim_verdict([V(3, 0, 0, 0, 0), V(1, 1, 0, 0, 0)], V(3, 1, 0, 0, 0)) == ("slack", V(0, 1, 0, 0, 0))
    assert claim_verdict([V(3, 1, 0, 0, 0), V(1, 1, 0, 0, 0)], V(3, 1, 0, 0, 0)) == ("tight", None)
