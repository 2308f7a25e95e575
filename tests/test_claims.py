"""Structural tests of the claims registry against the papers.

The papers are "Circuit Complexity Bounds for Visual Autoregressive Model" (Ke, Li, Liang, Shi,
Song; arXiv:2501.04299; the registry's VAR claims) and "On Computational Limits of FlowAR Models:
Expressivity and Efficiency" (Cao, Gong, Ke, Li, Liang, Sha, Shi, Song; arXiv:2502.16490; the
FlowAR claims). The small facts the registry relies on — each claim's heading and the depth each
lemma prints — are stored below as data (HEADINGS, QUOTES) and checked against the registry
without the papers. Only the check that those facts occur in the papers' text needs the text,
a plain-text copy of each paper in the directory named by ``TC0SIM_PAPERS`` (files
``004_b44d877f6fb1d2df.txt`` and ``002_a5a98ee2256a4fde.readable.txt``); without it those tests
are skipped with that reason in the summary. These tests depend only on the registry, not on the
DAG or interpreters.
"""

from __future__ import annotations

import ast
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from tc0sim.audit import claims as registry
from tc0sim.audit.claims import CLAIMS, FLOWAR_PAPER, SYMBOLS, VAR_PAPER, Claim, get
from tc0sim.errors import ConfigError
from tc0sim.ir.vectors import from_dict
from tc0sim.linear import parse_linear

REQUIRED_IDS = (
    "VAR-L3.5", "VAR-L3.6", "VAR-L3.7",
    "VAR-L5.1", "VAR-L5.2", "VAR-L5.3", "VAR-L5.4", "VAR-L5.5", "VAR-L5.6",
    "VAR-P5.7", "VAR-L5.8", "VAR-L5.9", "VAR-L5.10", "VAR-T5.11",
    "FlowAR-L3.9", "FlowAR-L3.10", "FlowAR-L3.11",
    "FlowAR-L4.1", "FlowAR-L4.2", "FlowAR-L4.3", "FlowAR-L4.4", "FlowAR-L4.5",
    "FlowAR-L4.6", "FlowAR-L4.7", "FlowAR-L4.8", "FlowAR-T4.9",
    "FlowAR-L5.5", "FlowAR-L5.6", "FlowAR-L5.7", "FlowAR-T5.8",
)

KNOWN_STEP_MISMATCHES = frozenset({"FlowAR-L4.6", "FlowAR-L4.7"})
"""Claims whose proof steps, as printed, do not add up to the stated depth (see their notes)."""

KIND_DIMS = {
    "matmul": {"n1", "d", "n2"},
    "upsample": {"h", "w", "c", "r"},
    "downsample": {"h", "w", "c", "r"},
    "attention_matrix": {"n", "d"},
    "attention": {"n", "d"},
    "aattc": {"n", "d"},  # the degree g is a param of the kind
    "mlp": {"n", "c", "d"},
    "ffn": {"n", "c"},
    "layernorm": {"n", "c"},
    "conv2d": {"h", "w", "c", "k", "hk", "wk"},
    "flow": {"h", "w", "c"},
    "flow_bezier": {"h", "w", "c"},
    "flow_matching": {"h", "w", "c"},
    "var": {"h", "w", "c"},
    "flowar": {"h", "w", "c"},
    "fast_flowar": {"h", "w", "c"},
}

PAPER_FILES = {
    VAR_PAPER: "004_b44d877f6fb1d2df.txt",
    FLOWAR_PAPER: "002_a5a98ee2256a4fde.readable.txt",
}
"""The plain-text copies of the two papers the text tests read (arXiv:2501.04299, arXiv:2502.16490)."""
CIRCUIT_CLAIMS = tuple(c for c in CLAIMS if c.paper in PAPER_FILES and c.check != "approx")
"""The circuit-complexity claims; the measured ones (universal approximation, FlowAR's error lemmas
D.3–D.7) are tested in test_approx.py and test_audit_verdicts.py."""

HEADINGS = {
    "VAR-L3.5": "Operations on floating point numbers in TC^0",
    "VAR-L3.6": "Approximating the Exponential Operation in TC^0",
    "VAR-L3.7": "Approximating the Square Root Operation in TC^0",
    "VAR-L5.1": "Up-Interpolation in TC^0",
    "VAR-L5.2": "Matrix Multiplication belongs to TC^0 class",
    "VAR-L5.3": "Attention matrix computation belongs to TC^0 class",
    "VAR-L5.4": "MLP computation falls within TC^0 class",
    "VAR-L5.5": "LN computation falls within TC^0 class",
    "VAR-L5.6": "One Kernel Convolution Process in TC^0",
    "VAR-P5.7": "Multiple Kernel Convolution Process in TC^0",
    "VAR-L5.8": "VAR Transformer computation in TC^0",
    "VAR-L5.9": "Feature Map Reconstruction computation in TC^0",
    "VAR-L5.10": "VQ-VAE Decoder process in TC^0",
    "VAR-T5.11": "Circuit complexity of the VAR model.",
    "FlowAR-L3.9": "Float point number operations in",
    "FlowAR-L3.10": "Exponential Approximation in",
    "FlowAR-L3.11": "Square Root Approximation in",
    "FlowAR-L4.1": "Matrix multiplication in",
    "FlowAR-L4.2": "Up-Sampling computation in",
    "FlowAR-L4.3": "Down-Sampling computation in",
    "FlowAR-L4.4": "MLP computation in",
    "FlowAR-L4.5": "FFN computation in",
    "FlowAR-L4.6": "Attention layer computation in",
    "FlowAR-L4.7": "Layer normalization layer computation in",
    "FlowAR-L4.8": "Flow matching layer computation in",
    "FlowAR-T4.9": "FlowAR Model computation in",
    "FlowAR-L5.2": "Fast Attention via Subquadratic Computation",
    "FlowAR-L5.5": "Inference Runtime of Original FlowAR Architecture",
    "FlowAR-L5.6": "Inference Runtime of Fast FlowAR Architecture",
    "FlowAR-L5.7": "Error Bound Between Fast FlowAR and FlowAR Outputs",
    "FlowAR-T5.8": "Existence of Almost Quadratic Time Algorithm",
}
"""Each claim's heading in its paper, ``REF (TITLE…``, as printed (up to the TC^0 symbol)."""

# Depth (or runtime) as printed in the paper, inside the block (heading to next heading)
# of the given reference: (claim id, block reference, exact substring).
QUOTES = (
    ("VAR-L3.6", "Lemma 3.6", "constant depth d_{exp}"),
    ("VAR-L3.7", "Lemma 3.7", "constant depth d_{sqr}"),
    ("VAR-L5.1", "Lemma 5.1", r"the total depth is $2d_{\text{std}} + d_{\oplus}$"),
    ("VAR-L5.2", "Lemma 5.2", r"constant depth $(d_{\text{std}} + d_{\oplus})$"),
    ("VAR-L5.3", "Lemma 5.3", r"constant depth $3(d_{\text{std}} + d_{\oplus}) + d_{\text{exp}}$"),
    ("VAR-L5.4", "Lemma 5.4", r"constant depth $2d_{\text{std}} + d_{\oplus}$"),
    ("VAR-L5.5", "Lemma 5.5", r"$5d_{\text{std}} + 2d_{\oplus} + d_{\text{sqr}}t$"),
    ("VAR-L5.6", "Lemma 5.6", r"h_k \times w_k \times c \leq n"),
    ("VAR-T5.11", "Theorem 5.11", r"$O(1)$ depth"),
    ("FlowAR-L3.10", "Lemma 3.10", r"d_{\exp} the required circuit depth"),
    ("FlowAR-L3.11", "Lemma 3.11", r"d_{\mathrm{sqrt}} the required circuit depth"),
    ("FlowAR-L4.1", "Lemma 4.1", r"d_{\mathrm{std}}+d_{\oplus}."),
    ("FlowAR-L4.2", "Lemma 4.2", r"2d_{\mathrm{std}}+d_{\oplus}."),
    ("FlowAR-L4.3", "Lemma 4.3", r"d_{\mathrm{std}}+d_{\oplus}."),
    ("FlowAR-L4.4", "Lemma 4.4", r"2d_{\mathrm{std}}+d_{\oplus}, where"),
    ("FlowAR-L4.5", "Lemma 4.5", r"6d_{\mathrm{std}}+2d_{\oplus}."),
    ("FlowAR-L4.6", "Lemma 4.6", r"6(d_{\mathrm{std}}+d_{\oplus})+d_{\exp}."),
    ("FlowAR-L4.6", "Lemma C.3", r"d_{\mathrm{all}}=6(d_{\mathrm{std}}+d_{\oplus})+d_{\exp}"),
    ("FlowAR-L4.7", "Lemma 4.7", r"5d_{\mathrm{std}}+2d_{\oplus}+d_{\mathrm{sqrt}}."),
    ("FlowAR-L4.7", "Lemma C.4", r"Y_{j,*} requires depth"),
    ("FlowAR-L4.7", "Lemma C.4", r"2d_{\mathsf{std}}+d_{\oplus}"),
    ("FlowAR-L4.8", "Lemma 4.8", r"26d_{\mathrm{std}}+12d_{\oplus}+2d_{\mathrm{sqrt}}+d_{\exp}."),
    ("FlowAR-L4.8", "Lemma 4.8", r"14d_{\mathrm{std}}+8d_{\oplus}+d_{\mathrm{sqrt}}+d_{\exp}"),
    ("FlowAR-L4.8", "Lemma 4.8", r"10d_{\mathrm{std}}+3d_{\oplus}+d_{\mathrm{sqrt}}"),
    ("FlowAR-T4.9", "Theorem 4.9", r"K=O(1)"),
    ("FlowAR-T4.9", "Theorem 4.9", r"Part 2. Depth:"),
    ("FlowAR-L5.2", "Lemma 5.2", r"n^{1+o(1)}"),
    ("FlowAR-L5.5", "Lemma 5.5", r"O(n^{4+o(1)})"),
    ("FlowAR-L5.6", "Lemma 5.6", r"O(n^{2+o(1)})"),
    ("FlowAR-L5.7", "Lemma 5.7", r"1/\operatorname{poly}(n)"),
    ("FlowAR-T5.8", "Theorem 5.8", r"R=o(\sqrt{\log n})"),
)

STATED_TOTALS = (
    "VAR-L3.6", "VAR-L3.7", "VAR-L5.1", "VAR-L5.2", "VAR-L5.3", "VAR-L5.4", "VAR-L5.5",
    "FlowAR-L4.1", "FlowAR-L4.2", "FlowAR-L4.3", "FlowAR-L4.4", "FlowAR-L4.5", "FlowAR-L4.6",
    "FlowAR-L4.7", "FlowAR-L4.8",
)
"""Claims whose first quote above is the total depth the paper states for them."""


def _latex_depth(quote: str) -> tuple[int, ...]:
    """The depth vector of a quoted LaTeX depth such as ``6(d_{\\mathrm{std}}+d_{\\oplus})+d_{\\exp}.``."""
    text = re.sub(r"the total depth is|constant depth|, where|\\(text|mathrm|mathsf)|[${}]", "", quote)
    text = re.sub(r"d_sqr\s*t|d_sqrt|d_sqr", "d_sqrt", text)
    text = text.replace("d_\\oplus", "d_sum").replace("d_\\exp", "d_exp").strip(" .,")
    return parse_linear(text, SYMBOLS)


_HEADING = re.compile(r"^(Lemma|Theorem|Proposition|Definition|Corollary|Remark) [0-9A-D.]+ \(", re.M)


def _papers_dir() -> Path:
    env = os.environ.get("TC0SIM_PAPERS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "seeds"


@pytest.fixture(scope="module")
def papers() -> dict[str, str]:
    """The papers' text, keyed by the registry's paper label."""
    directory = _papers_dir()
    if not all((directory / name).is_file() for name in PAPER_FILES.values()):
        pytest.skip(
            "needs the plain text of arXiv:2501.04299 and arXiv:2502.16490 "
            f"({', '.join(PAPER_FILES.values())}) in $TC0SIM_PAPERS, not found in {directory}; "
            "the facts they confirm are checked from HEADINGS and QUOTES without the text"
        )
    return {
        paper: (directory / name).read_text(encoding="utf-8", errors="replace")
        for paper, name in PAPER_FILES.items()
    }


def _block(text: str, ref: str) -> str:
    """The text from the heading ``ref (`` to the next lemma/theorem/definition heading."""
    match = re.search(rf"^{re.escape(ref)} \(", text, re.M)
    assert match, f"no heading {ref!r} in the paper"
    following = _HEADING.search(text, match.end())
    return text[match.start(): following.start() if following else len(text)]


def _sum_steps(claim: Claim) -> dict[str, int]:
    total: Counter[str] = Counter()
    for step in claim.steps:
        total.update(step.depth)
    return {k: v for k, v in total.items() if v}


_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load,
    ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.USub,
)


def _eval_int(expr: str, names: dict[str, int]) -> int:
    """Evaluate an integer expression over names (+ - * // and parentheses only)."""
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, _ALLOWED_NODES), f"disallowed syntax in {expr!r}"
    return _walk(tree.body, names)


def _walk(node: ast.AST, names: dict[str, int]) -> int:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int)
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.UnaryOp):
        return -_walk(node.operand, names)
    assert isinstance(node, ast.BinOp)
    left, right = _walk(node.left, names), _walk(node.right, names)
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return left // right


_CHECK = re.compile(r"^(.+?)\s*(<=|>=|==|<|>)\s*(.+)$")


def _holds(check: str, names: dict[str, int]) -> bool:
    match = _CHECK.match(check)
    assert match, f"malformed check {check!r}"
    lhs, op, rhs = match.group(1), match.group(2), match.group(3)
    a, b = _eval_int(lhs, names), _eval_int(rhs, names)
    return {"<=": a <= b, ">=": a >= b, "==": a == b, "<": a < b, ">": a > b}[op]


def test_required_ids_present_and_unique() -> None:
    ids = [claim.id for claim in CLAIMS]
    assert len(ids) == len(set(ids))
    missing = set(REQUIRED_IDS) - set(ids)
    assert not missing


def test_get_and_unknown_id() -> None:
    assert get("VAR-L5.3").ref == "Lemma 5.3"
    with pytest.raises(ConfigError, match="unknown claim 'VAR-L5.7'"):
        get("VAR-L5.7")


def test_symbols_are_the_primitive_tables() -> None:
    from tc0sim.ir import primitives

    assert registry.SYMBOLS is primitives.SYMBOLS
    assert registry.SYMBOLS[:5] == ("d_std", "d_sum", "d_prod", "d_exp", "d_sqrt")


@pytest.mark.parametrize("claim", CIRCUIT_CLAIMS, ids=lambda c: c.id)
def test_depth_vectors_well_formed(claim: Claim) -> None:
    vectors = [claim.depth] if claim.depth is not None else []
    vectors += [step.depth for step in claim.steps]
    for vector in vectors:
        assert vector, "empty depth vector"
        for key, value in vector.items():
            assert key in SYMBOLS
            assert isinstance(value, int) and value > 0
    if claim.depth is not None:
        assert claim.depth_o1


@pytest.mark.parametrize("claim", CIRCUIT_CLAIMS, ids=lambda c: c.id)
def test_fields_consistent(claim: Claim) -> None:
    assert claim.paper in PAPER_FILES
    prefix = "VAR-" if claim.paper == VAR_PAPER else "FlowAR-"
    assert claim.id.startswith(prefix)
    assert claim.title and claim.statement and claim.note
    assert claim.size_degree is None or claim.size_degree > 0
    if claim.kind is None:
        assert claim.unchecked and not claim.dims
        assert all(p.check is None for p in claim.preconditions)
    else:
        assert claim.unchecked is None
        assert claim.kind in KIND_DIMS
        assert set(claim.dims) == KIND_DIMS[claim.kind]


@pytest.mark.parametrize("claim", [c for c in CLAIMS if c.kind], ids=lambda c: c.id)
@pytest.mark.parametrize("n", [4, 8, 16, 32])
def test_dims_satisfy_checkable_preconditions(claim: Claim, n: int) -> None:
    dims = {name: _eval_int(expr, {"n": n}) for name, expr in claim.dims.items()}
    assert all(value >= 1 for value in dims.values())
    names = {"n": n, **dims}
    for pre in claim.preconditions:
        if pre.check is not None:
            assert _holds(pre.check, names), f"{pre.check} fails at n={n}: {dims}"


@pytest.mark.parametrize(
    "claim", [c for c in CLAIMS if c.steps and c.depth is not None], ids=lambda c: c.id
)
def test_steps_add_up(claim: Claim) -> None:
    total = _sum_steps(claim)
    if claim.id in KNOWN_STEP_MISMATCHES:
        assert total != claim.depth
        assert "STEPS DO NOT ADD UP" in claim.note
    else:
        assert total == claim.depth


def test_known_mismatches_are_registered() -> None:
    ids = {claim.id for claim in CLAIMS}
    assert KNOWN_STEP_MISMATCHES <= ids


def test_every_claim_has_its_heading_recorded() -> None:
    assert set(HEADINGS) == {claim.id for claim in CIRCUIT_CLAIMS}


@pytest.mark.parametrize("claim", CIRCUIT_CLAIMS, ids=lambda c: c.id)
def test_title_matches_the_recorded_heading(claim: Claim) -> None:
    assert claim.ref.split()[0] in ("Lemma", "Proposition", "Theorem")
    words = [w for w in re.findall(r"[A-Za-z]{3,}", claim.title) if w.lower() != "layer"]
    heading = HEADINGS[claim.id].replace("LN ", "layer normalization ").lower()  # VAR Lemma 5.5 abbreviates
    assert any(w.lower()[:5] in heading for w in words), f"title {claim.title!r} vs {heading!r}"


@pytest.mark.parametrize("claim_id", STATED_TOTALS)
def test_registered_depth_is_the_quoted_total(claim_id: str) -> None:
    quote = next(q for cid, _, q in QUOTES if cid == claim_id)
    assert _latex_depth(quote) == from_dict(get(claim_id).depth)


@pytest.mark.parametrize("claim", CIRCUIT_CLAIMS, ids=lambda c: c.id)
def test_recorded_heading_is_in_the_paper(claim: Claim, papers: dict[str, str]) -> None:
    block = _block(papers[claim.paper], claim.ref)
    assert block.startswith(f"{claim.ref} ({HEADINGS[claim.id]}"), block.splitlines()[0]


@pytest.mark.parametrize("claim_id,ref,quote", QUOTES, ids=[f"{q[0]}:{q[1]}" for q in QUOTES])
def test_quoted_depths_in_the_paper(claim_id: str, ref: str, quote: str, papers: dict[str, str]) -> None:
    claim = get(claim_id)
    assert quote in _block(papers[claim.paper], ref)


def test_proposition_5_7_is_not_a_lemma(papers: dict[str, str]) -> None:
    text = papers[VAR_PAPER]
    assert re.search(r"^Proposition 5\.7 \(", text, re.M)
    assert not re.search(r"^Lemma 5\.7 \(", text, re.M)
