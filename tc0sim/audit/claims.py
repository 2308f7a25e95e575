"""The registry of the papers' depth and size claims, as plain data.

Sources (a note's "line N" is the line of the paper's plain-text extraction the registry was
written from; the lemma, theorem or definition number is the citation):

* VAR — *Circuit Complexity Bounds for Visual Autoregressive Model*, Yekun Ke, Xiaoyu Li,
  Yingyu Liang, Zhenmei Shi, Zhao Song, arXiv:2501.04299 (main result Theorem 5.11);
* FlowAR — *On Computational Limits of FlowAR Models: Expressivity and Efficiency*, Yang Cao,
  Chengyue Gong, Yekun Ke, Xiaoyu Li, Yingyu Liang, Zhizhou Sha, Zhenmei Shi, Zhao Song,
  arXiv:2502.16490 (Theorem 4.9; fast FlowAR in Section 5);
* Universality — *Fundamental Limits of Visual Autoregressive Transformers: Universal Approximation
  Abilities*, Yifang Chen, Xiaoyu Li, Yingyu Liang, Zhenmei Shi, Zhao Song, ICML 2025
  (arXiv:2502.06167, first titled *Universal Approximation of Visual Autoregressive Transformers*):
  Definitions 5.2–5.3, Lemmas 5.4, 6.3–6.5, Theorem 6.6, Corollaries 7.1–7.2 (ids ``UA-…``).

Conventions:

* Depth vectors are over the primitive table's symbols (``tc0sim.ir.primitives.SYMBOLS``); the papers' ``d_⊕`` is ``d_sum``, ``d_⊗`` is
  ``d_prod``, ``d_sqr``/``d_sqrt`` is ``d_sqrt``. Zero entries are omitted.
* ``Claim.depth`` is the explicit vector the paper states (in the statement, or as the
  proof's stated total when the statement only says O(1) — the note says which).
* ``Precondition.check`` is ``"<lhs> <op> <rhs>"`` over integers and names. A name is looked
  up in the claim's ``dims`` first (evaluated at the sweep's ``n``); the bare name ``n`` is
  the sweep's size parameter only when ``dims`` has no key ``n``. For the token-level kinds
  of the FlowAR paper (mlp, ffn, attention, layernorm) the kind's ``n`` is the token count
  ``h*w = n_side^2`` (the paper assumes ``h = w = n``), so the paper's ``c <= n`` reads
  ``c * c <= n`` there.
* ``size_degree`` is None throughout: no claim states an explicit polynomial degree for the
  circuit size (only ``poly(n)``); runtime exponents are recorded in ``runtime``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import fmt, from_dict

VAR_PAPER = "VAR"
FLOWAR_PAPER = "FlowAR"
UA_PAPER = "Universality"


@dataclass(frozen=True)
class ProofStep:
    """One step of a proof, with its depth as the proof states it (none for a claim stating no depth)."""

    text: str
    depth: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Precondition:
    """One assumption of a claim; ``check`` is machine-checkable or None."""

    text: str
    check: str | None


@dataclass(frozen=True)
class Claim:
    """One lemma, proposition or theorem of one of the papers, with its depth and size claims.

    Only the identification and the statement are required; every other field has the default
    of a claim that states nothing of that sort, so a registry entry lists only what it claims.
    ``fixed``: for a runtime claim, ``kind`` is a proxy whose operation count is fitted in n, and
    ``fixed`` says what is held fixed.
    """

    id: str
    paper: str
    ref: str
    title: str
    statement: str
    depth: dict[str, int] | None = None
    depth_o1: bool = False
    size: str = ""
    size_degree: int | None = None
    runtime: str = ""
    preconditions: tuple[Precondition, ...] = ()
    steps: tuple[ProofStep, ...] = ()
    kind: str | None = None
    dims: dict[str, str] = field(default_factory=dict)
    unchecked: str | None = None
    note: str = ""
    fixed: str = ""

    def __post_init__(self) -> None:
        """Schema check: known depth symbols with positive counts, and a kind for every sweep."""
        stated = self.depth is not None or self.depth_o1
        for vector in ([self.depth] if self.depth is not None else []) + [s.depth for s in self.steps if s.depth or stated]:
            bad = [k for k, c in vector.items() if k not in SYMBOLS or not isinstance(c, int) or c < 1]
            if bad or not vector:
                raise ConfigError(f"claim {self.id}: depth {vector!r} needs positive counts of {', '.join(SYMBOLS)}")
        if self.dims and self.kind is None:
            raise ConfigError(f"claim {self.id}: dims without a kind to build")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields ``tc0sim claims --format json`` shows, preconditions and steps as dicts."""
        full = asdict(self)
        full["preconditions"], full["steps"] = list(full["preconditions"]), list(full["steps"])
        return {key: full[key] for key in _SHOWN}


_SHOWN = ("id", "paper", "ref", "title", "statement", "depth", "depth_o1", "size", "kind", "dims", "preconditions", "steps", "unchecked", "note")
"""The fields of ``Claim.as_dict``, in order."""


def claimed_depth(claim: Claim) -> str | None:
    """The depth a claim states, as every report writes it: its linear form, 'O(1)', or None."""
    if claim.depth is not None:
        return fmt(from_dict(claim.depth))
    return "O(1)" if claim.depth_o1 else None


_P_POLY = Precondition("p <= poly(n)", None)
_P_SQUARE = Precondition("h = w = n", None)
_P_H_IS_N = Precondition("h = n (h = w = n)", "h == n")
_P_W_IS_N = Precondition("w = n (h = w = n)", "w == n")
_P_C_LE_N = Precondition("c <= n", "c <= n")
_P_C_LE_N_TOKENS = Precondition("c <= n", "c * c <= n")
_P_R_LE_N = Precondition("r <= n", "r <= n")
_P_K_CONSTANT = Precondition("K = O(1)", None)
_P_C_LOG = Precondition("c = O(log n)", None)
_P_D_LOG = Precondition("d = O(log n)", None)
_P_N1_N2_POLY = Precondition("n1, n2 <= poly(n)", None)
_P_K_POLY = Precondition("k <= poly(n)", None)
_P_GEOMETRIC = Precondition("r_i := a^{K-i}, a in N+", None)
"""Preconditions several claims share (the token-level kinds read ``c <= n`` as ``c * c <= n``)."""

CLAIMS: tuple[Claim, ...] = (
    # ------------------------------------------------------------------ VAR
    Claim(
        id="VAR-L3.5",
        paper=VAR_PAPER,
        ref="Lemma 3.5",
        title="Operations on floating point numbers",
        statement=(
            "Assume p <= poly(n). Part 1: addition, division and multiplication of two p-bit "
            "floats are simulated by a poly(n)-size DLOGTIME-uniform threshold circuit of "
            "constant depth d_std. Part 2: the iterated multiplication of n p-bit floats, "
            "constant depth d_⊗. Part 3: the iterated addition of n p-bit floats, constant "
            "depth d_⊕, with one rounding after the summation is completed."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        unchecked=(
            "arithmetic-level lemma about F_p gates (it defines d_std, d_prod, d_sum as the "
            "depth of one gate); checked by the fp tests, not on a DAG"
        ),
        note=(
            "Three parts with three depths (Part 1 d_std, Part 2 d_prod, Part 3 d_sum), so no "
            "single vector is recorded. Part 1 lists addition, division and multiplication but "
            "not comparison, which docs/semantics.md also charges d_std; FlowAR Lemma 3.9 "
            "lists comparison but not division. Cited as Lemmas 10 and 11 of [Chi24]."
        ),
    ),
    Claim(
        id="VAR-L3.6",
        paper=VAR_PAPER,
        ref="Lemma 3.6",
        title="Approximating the exponential",
        statement=(
            "Assume p <= poly(n). For any p-bit float x, exp(x) is approximated by a "
            "poly(n)-size uniform threshold circuit of constant depth d_exp with relative "
            "error at most 2^-p."
        ),
        depth={"d_exp": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        unchecked=(
            "arithmetic-level lemma about one F_p gate (defines d_exp); the exp primitive is "
            "correctly rounded, which meets the 2^-p relative error; checked by the fp tests"
        ),
        note=(
            "Lemma 3.6 and Lemma 3.7 both cite 'Lemma 12 of [Chi24]'; at most "
            "one of the two citations can be exact."
        ),
    ),
    Claim(
        id="VAR-L3.7",
        paper=VAR_PAPER,
        ref="Lemma 3.7",
        title="Approximating the square root",
        statement=(
            "Assume p <= poly(n). For any p-bit float x, sqrt(x) is approximated by a "
            "poly(n)-size uniform threshold circuit of constant depth d_sqr with relative "
            "error at most 2^-p."
        ),
        depth={"d_sqrt": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        unchecked=(
            "arithmetic-level lemma about one F_p gate (defines d_sqrt); the sqrt primitive is "
            "correctly rounded; checked by the fp tests"
        ),
        note=(
            "The symbol is written d_{sqr} here and 'd_{sqr}t' in Lemma 5.5"
            "; recorded as d_sqrt, the spelling of FlowAR Lemma 3.11. Same "
            "citation as Lemma 3.6 ('Lemma 12 of [Chi24]')."
        ),
    ),
    Claim(
        id="VAR-L5.1",
        paper=VAR_PAPER,
        ref="Lemma 5.1",
        title="Up-interpolation",
        statement=(
            "For X in F_p^{h x w x c} and the up-scaled Y in F_p^{h' x w' x c}, assume "
            "p <= poly(n) and h, h', w, w' <= poly(n); the up-interpolation layer of "
            "Definition 4.3, Y_{i,j,l} = sum_{s,t in {-1..2}} W(s) X_{ih/h'+s, jw/w'+t, l} W(t), "
            "is simulated by a poly(n)-size, O(1)-depth uniform threshold circuit; the proof "
            "gives total depth 2d_std + d_⊕."
        ),
        depth={"d_std": 2, "d_sum": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_POLY,
            Precondition("h, h', w, w' <= poly(n)", None),
        ),
        steps=(
            ProofStep(
                "each product W(s) * X_{ih/h'+s, jw/w'+t, q} * W(t) by Part 1 of Lemma 3.5, "
                "all s, t in parallel: 2d_std",
                {"d_std": 2},
            ),
            ProofStep("the sum over s, t by Part 3 of Lemma 3.5: d_⊕", {"d_sum": 1}),
        ),
        kind="upsample",
        dims={"h": "n", "w": "n", "c": "n", "r": "2"},
        note=(
            "The statement claims only O(1) depth; the vector 2d_std + d_⊕ is the "
            "proof's stated total, which docs/operators.md uses as the claim. Proof typos: "
            "channel index q for l in X and Y_{i,j,q}; "
            "'W(u)' for W(s). The proof uses c <= poly(n), absent from "
            "the statement. Definition 4.3 types the kernel W as a map F_p^{h x w x c} -> "
            "F_p^{h' x w' x c} while Definition 4.2 has W: F_p -> F_p with "
            "W(x) in [0,1]; the Keys bicubic kernel (a = -0.75) that docs/operators.md "
            "prescribes takes negative values, so W(x) in [0,1] does not hold for it. Line 216 "
            "calls phi_up a matrix multiplication (an h'w' x hw matrix), which by Lemma 5.2 "
            "would cost d_std + d_⊕, one d_std less than this proof; tc0sim follows this proof. "
            "The index ih/h'+s (no floor, no half-pixel offset, no border clamp) differs from "
            "tc0sim's PyTorch semantics; depth is unaffected."
        ),
    ),
    Claim(
        id="VAR-L5.2",
        paper=VAR_PAPER,
        ref="Lemma 5.2",
        title="Matrix multiplication",
        statement=(
            "Assume p <= poly(n), n1, n2 <= poly(n) and d <= n. For A in F_p^{n1 x d} and "
            "B in F_p^{d x n2}, the product AB is computed by a DLOGTIME-uniform threshold "
            "circuit of constant depth d_std + d_⊕ and size poly(n)."
        ),
        depth={"d_std": 1, "d_sum": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_POLY,
            _P_N1_N2_POLY,
            Precondition("d <= n", "d <= n"),
        ),
        kind="matmul",
        dims={"n1": "n", "d": "n", "n2": "n"},
        note=(
            "Cited from Lemma 4.2 of [CLL+24b] without proof. The FlowAR paper's counterpart "
            "(Lemma 4.1) drops the assumption d <= n. Lemma 5.2 sits in Section 5.2 "
            "'Computing Attention Matrix' and Lemma 5.3 in Section 5.3 'Computing Single "
            "Attention Layer': the headings are one lemma off."
        ),
    ),
    Claim(
        id="VAR-L5.3",
        paper=VAR_PAPER,
        ref="Lemma 5.3",
        title="Attention matrix computation",
        statement=(
            "Assume p <= poly(n). The attention matrix A_{i,j} = exp(X_{i,*} W_Q W_K^T "
            "X_{j,*}^T) of Definition 4.4 (X in F_p^{n x d}, W_Q, W_K in F_p^{d x d}) is "
            "computed by a poly(n)-size uniform threshold circuit of constant depth "
            "3(d_std + d_⊕) + d_exp."
        ),
        depth={"d_std": 3, "d_sum": 3, "d_exp": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_POLY,
            Precondition("implied by Lemma 5.2: d <= n", "d <= n"),
        ),
        steps=(
            ProofStep("W_Q W_K^T by Lemma 5.2: d_std + d_⊕", {"d_std": 1, "d_sum": 1}),
            ProofStep(
                "s_{i,j} = X_{i,*} W_Q W_K^T X_{j,*}^T by Lemma 5.2: 2(d_std + d_⊕)",
                {"d_std": 2, "d_sum": 2},
            ),
            ProofStep("A_{i,j} = exp(t_{i,j}) by Lemma 3.6: d_exp", {"d_exp": 1}),
        ),
        kind="attention_matrix",
        dims={"n": "n", "d": "n"},
        note=(
            "Steps add up to the stated total. The score is named s_{i,j} "
            " and then t_{i,j}. The statement assumes only "
            "p <= poly(n), but the proof applies Lemma 5.2, which needs d <= n (recorded as an "
            "implied precondition). This lemma builds only A; Lemma 5.8 uses it for the whole "
            "layer Attn = D^-1 A X W_V (Definition 4.5): the VAR paper has no lemma for the row sums, "
            "the division and the value products (FlowAR Lemma 4.6 / C.3 has)."
        ),
    ),
    Claim(
        id="VAR-L5.4",
        paper=VAR_PAPER,
        ref="Lemma 5.4",
        title="MLP layer",
        statement=(
            "Assume p <= poly(n). The MLP layer g^MLP(X)_{i,*} = W X_{i,*} + b of "
            "Definition 4.6 is simulated by a poly(n)-size uniform threshold circuit of "
            "constant depth 2d_std + d_⊕."
        ),
        depth={"d_std": 2, "d_sum": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_POLY,
            Precondition("implied by Lemma 5.2: inner dimension c <= n", "c <= n"),
        ),
        kind="mlp",
        dims={"n": "n", "c": "n", "d": "n"},
        note=(
            "Cited from Lemma 4.5 of [CLL+24b] without proof. Definition 4.6 does not give the "
            "shape of W and multiplies it on the left of the row X_{i,*}; tc0sim "
            "writes XW + b with W[c,d]. The inner-dimension bound is implied by Lemma 5.2."
        ),
    ),
    Claim(
        id="VAR-L5.5",
        paper=VAR_PAPER,
        ref="Lemma 5.5",
        title="Layer normalization",
        statement=(
            "Assume p <= poly(n). The layer-wise normalization g^LN(X)_{i,*} = (X_{i,*} - "
            "mu_i) / sqrt(sigma_i^2) of Definition 4.7 is simulated by a poly(n)-size uniform "
            "threshold circuit of constant depth 5d_std + 2d_⊕ + d_sqrt."
        ),
        depth={"d_std": 5, "d_sum": 2, "d_sqrt": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        kind="layernorm",
        dims={"n": "n", "c": "n"},
        note=(
            "Typo: the depth is printed '5d_std + 2d_⊕ + d_{sqr}t', read as "
            "5d_std + 2d_⊕ + d_sqrt. Cited from Lemma 4.6 of [CLL+24b] without proof."
        ),
    ),
    Claim(
        id="VAR-L5.6",
        paper=VAR_PAPER,
        ref="Lemma 5.6",
        title="One-kernel convolution",
        statement=(
            "For X in F_p^{h x w x c}, one kernel K in F_p^{h_k x w_k x c}, padding 0, stride "
            "1, h, w, c <= poly(n) and h_k x w_k x c <= n, the one-kernel convolution "
            "Y_{i,j} = sum_{m,n,q} X_{i+m-1, j+n-1, q} K_{m,n,q} + b is simulated by a "
            "poly(n)-size, O(1)-depth uniform threshold circuit."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            Precondition("h, w, c <= poly(n)", None),
            Precondition("h_k x w_k x c <= n", "hk * wk * c <= n"),
        ),
        steps=(
            ProofStep(
                "each product X_{i+m-1, j+n-1, q} K_{m,n,q} in O(1) depth by Part 1 of "
                "Lemma 3.5 (one d_std)",
                {"d_std": 1},
            ),
            ProofStep(
                "the sum of all products and b in O(1) depth by Lemma 3.5 (iterated "
                "addition, one d_⊕)",
                {"d_sum": 1},
            ),
        ),
        kind="conv2d",
        dims={"h": "n", "w": "n", "c": "n//4", "k": "1", "hk": "2", "wk": "2"},
        note=(
            "Only O(1) is claimed; the steps' depths are those of the cited parts of "
            "Lemma 3.5 (the proof itself says O(1)), giving d_std + d_⊕. The output is stated "
            "as F_p^{(h-h_k+1) x (w-w_k+1) x c}, but one kernel yields one channel. "
            "Unlike every other lemma the statement has no precision assumption p <= poly(n). "
            "The bias is inside the iterated sum (h_k w_k c + 1 terms), as in docs/operators.md. "
            "Definition 4.10 says the input 'has zero padding' while the lemma "
            "assumes padding 0 and a valid-convolution output size. The summation index n "
            " shadows the size parameter n. dims need n >= 4 (c = n//4)."
        ),
    ),
    Claim(
        id="VAR-P5.7",
        paper=VAR_PAPER,
        ref="Proposition 5.7",
        title="Multiple-kernel convolution",
        statement=(
            "With k <= poly(n) convolution kernels in a convolution block, computed in "
            "parallel, the whole convolution is simulated with size poly(n) and O(1) depth."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_K_POLY,
            Precondition("implied by Lemma 5.6: h_k x w_k x c <= n", "hk * wk * c <= n"),
        ),
        kind="conv2d",
        dims={"h": "n", "w": "n", "c": "n//4", "k": "n", "hk": "2", "wk": "2"},
        note=(
            "5.7 is a Proposition, not a Lemma: the range 'Lemmas 5.1-5.10' has no "
            "Lemma 5.7. Proof: 'easily derived from Lemma 5.6 and k <= poly(n)'. "
            "dims need n >= 4 (c = n//4)."
        ),
    ),
    Claim(
        id="VAR-L5.8",
        paper=VAR_PAPER,
        ref="Lemma 5.8",
        title="VAR Transformer (Phase 1)",
        statement=(
            "Assume m = O(1) transformer layers and p <= poly(n). The VAR Transformer TF of "
            "Definition 4.9 is simulated by a uniform threshold circuit of size poly(n) and "
            "O(1) depth."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(Precondition("m = O(1)", None), _P_POLY),
        unchecked=(
            "phase-level lemma (Phase 1 only); tc0sim audits the var model as a whole "
            "(Theorem 5.11) and its operators (Lemmas 5.1, 5.3-5.5)"
        ),
        note=(
            "The proof simulates Attn_i 'by using the result of Lemma 5.3', which "
            "computes only the attention matrix A, not D^-1 A X W_V (Definition 4.5); the "
            "missing row sums, division and two matrix products are O(1) by Lemmas 3.5 and "
            "5.2, so the conclusion stands. Definition 4.9 types the input as X in "
            "F_p^{1 x d} and the output as F_p^{n x d}."
        ),
    ),
    Claim(
        id="VAR-L5.9",
        paper=VAR_PAPER,
        ref="Lemma 5.9",
        title="Feature map reconstruction (Phase 2)",
        statement=(
            "Assume the feature map reconstruction needs k <= poly(n) convolution kernels and "
            "p <= poly(n). It is simulated by a uniform threshold circuit of size poly(n) and "
            "O(1) depth."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_K_POLY, _P_POLY),
        unchecked="phase-level lemma (Phase 2 only); audited through the var model (Theorem 5.11)",
        note=(
            "The proof cites only Proposition 5.7, but Phase 2 (Section 4.3) "
            "also up-interpolates every token map to the final size, which needs "
            "Lemma 5.1."
        ),
    ),
    Claim(
        id="VAR-L5.10",
        paper=VAR_PAPER,
        ref="Lemma 5.10",
        title="VQ-VAE decoder (Phase 3)",
        statement=(
            "Assume p <= poly(n). The VQ-VAE decoder process (ResNet blocks, attention blocks, "
            "up-sample blocks) is simulated by a uniform threshold circuit of size poly(n) "
            "and O(1) depth."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        unchecked="phase-level lemma (Phase 3 only); audited through the var model (Theorem 5.11)",
        note=(
            "The proof simulates the decoder's attention blocks 'by using the result of "
            "Lemma 5.8', the whole VAR-Transformer lemma; the attention lemma is "
            "5.3 (which itself covers only A, see VAR-L5.8). The ResNet blocks use "
            "Proposition 5.7 and Lemma 3.5 (residual additions), the up-sample blocks "
            "Lemma 5.1. The decoder's kernel count is not bounded in the statement (Lemma 5.9 "
            "assumes k <= poly(n))."
        ),
    ),
    Claim(
        id="VAR-T5.11",
        paper=VAR_PAPER,
        ref="Theorem 5.11",
        title="Circuit complexity of the VAR model",
        statement=(
            "Assuming p <= poly(n), the VAR model is simulated by a uniform threshold circuit "
            "of size poly(n) and O(1) depth."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_POLY,
            Precondition("implied by Lemma 5.8: m = O(1)", None),
            Precondition("implied by Lemma 5.9: k <= poly(n)", None),
        ),
        kind="var",
        dims={"h": "n", "w": "n", "c": "n"},
        note=(
            "Proof: 'directly comes from Lemma 5.8, Lemma 5.9 and Lemma 5.10'. The "
            "statement assumes only p <= poly(n), dropping Lemma 5.8's m = O(1) and Lemma "
            "5.9's k <= poly(n) (recorded as implied); the abstract adds 'hidden dimension "
            "d <= O(n)', which the theorem does not state. dims: final map h x w with "
            "c channels; the scale list, layer count and kernel counts come from the model file."
        ),
    ),
    # ------------------------------------------------------------------ FlowAR
    Claim(
        id="FlowAR-L3.9",
        paper=FLOWAR_PAPER,
        ref="Lemma 3.9",
        title="Floating-point operations",
        statement=(
            "Assume p <= poly(n). Addition, comparison and multiplication of two p-bit floats "
            "are computed by uniform TC^0 circuits (depth O(1), size poly(n)), of depth d_std; "
            "the product of n p-bit floats, of depth d_⊗; the sum of n p-bit floats, of depth "
            "d_⊕."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        unchecked=(
            "arithmetic-level lemma about F_p gates (defines d_std, d_prod, d_sum); checked by "
            "the fp tests, not on a DAG"
        ),
        note=(
            "Three depths (basic arithmetic d_std, iterated multiplication d_prod, iterated "
            "addition d_sum), no single vector. Division is not listed, yet the "
            "proofs charge D^-1 (C.3) and the LN quotient (C.4) to d_std 'by Lemma "
            "3.9'. The lemma has no numbered parts, yet proofs cite 'Part 1' and 'Part 3 of "
            "Lemma 3.9'. Later lemmas say d_std, d_⊕ are 'defined in "
            "Definition 3.9' and d_exp, d_sqrt 'in Definition 3.10/3.11': "
            "they are Lemmas 3.9-3.11. Definition 3.8 gives the value as a * w^b, a "
            "typo for a * 2^b."
        ),
    ),
    Claim(
        id="FlowAR-L3.10",
        paper=FLOWAR_PAPER,
        ref="Lemma 3.10",
        title="Exponential approximation",
        statement=(
            "Let p <= poly(n). For every p-bit float x a constant-depth, poly(n)-size uniform "
            "TC^0 circuit computes exp(x) with relative error at most 2^-p; its depth is d_exp."
        ),
        depth={"d_exp": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        unchecked="arithmetic-level lemma about one F_p gate (defines d_exp); checked by the fp tests",
        note="Same content as VAR Lemma 3.6.",
    ),
    Claim(
        id="FlowAR-L3.11",
        paper=FLOWAR_PAPER,
        ref="Lemma 3.11",
        title="Square root approximation",
        statement=(
            "Let p <= poly(n). For every p-bit float x a constant-depth, poly(n)-size uniform "
            "TC^0 circuit computes sqrt(x) with relative error at most 2^-p; its depth is "
            "d_sqrt."
        ),
        depth={"d_sqrt": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY,),
        unchecked="arithmetic-level lemma about one F_p gate (defines d_sqrt); checked by the fp tests",
        note="Same content as VAR Lemma 3.7.",
    ),
    Claim(
        id="FlowAR-L4.1",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.1",
        title="Matrix multiplication",
        statement=(
            "Let p <= poly(n), X in F_p^{n1 x d}, Y in F_p^{d x n2} with n1, n2 <= poly(n). "
            "The product XY is computed by a uniform TC^0 circuit of size poly(n) and depth "
            "d_std + d_⊕."
        ),
        depth={"d_std": 1, "d_sum": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(_P_POLY, _P_N1_N2_POLY),
        kind="matmul",
        dims={"n1": "n", "d": "n", "n2": "n"},
        note=(
            "Cited without proof. Unlike VAR Lemma 5.2 it has no assumption d <= n, and "
            "the attention proof (C.3) applies it to A X, whose inner dimension is hw = n^2 "
            "> n. It cites 'Chen et al., 2024a' (the RoPE-transformer paper) where "
            "The VAR paper cites Lemma 4.2 of the Mamba paper for the same result."
        ),
    ),
    Claim(
        id="FlowAR-L4.2",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.2",
        title="Up-sampling",
        statement=(
            "Let X in R^{h x w x c} and phi_up(X, r): R^{h x w x c} -> R^{hr x wr x c} the "
            "bicubic up-sampling of Definition B.1. Assume n = h = w, r <= n, c <= n, "
            "p <= poly(n). It is computed by a uniform TC^0 circuit of size poly(n) and depth "
            "2d_std + d_⊕."
        ),
        depth={"d_std": 2, "d_sum": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_H_IS_N,
            _P_W_IS_N,
            _P_R_LE_N,
            _P_C_LE_N,
            _P_POLY,
        ),
        steps=(
            ProofStep(
                "W(s) * W(t) * X_{i/r+s, j/r+s, l} by Part 1 of Lemma 3.9, all s, t in "
                "parallel: 2d_std",
                {"d_std": 2},
            ),
            ProofStep("the sum over s, t by Part 3 of Lemma 3.9: d_⊕", {"d_sum": 1}),
        ),
        kind="upsample",
        dims={"h": "n", "w": "n", "c": "n", "r": "2"},
        note=(
            "Steps add up to the total. The statement calls the bicubic function "
            "'the linear up sample function'. The proof indexes X_{i/r+s, j/r+s, l} "
            ": the second offset should be t, and Definition B.1 takes floors, "
            "X_{floor(i/r)+s, floor(j/r)+t, l}. The proof multiplies W(s) W(t) X "
            "(weights first) while the VAR paper computes W(s) X W(t); tc0sim follows the VAR paper; "
            "both are 2d_std. Definition B.1's kernel W: R -> [0,1] excludes the "
            "negative lobes of the Keys kernel (a = -0.75) that tc0sim prescribes."
        ),
    ),
    Claim(
        id="FlowAR-L4.3",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.3",
        title="Down-sampling",
        statement=(
            "Let X in R^{h x w x c} and phi_down(X, r) the linear down-sampling of Definition "
            "B.2. Assume n = h = w, r <= n, c <= n, p <= poly(n). It is computed by a uniform "
            "TC^0 circuit of size poly(n) and depth d_std + d_⊕."
        ),
        depth={"d_std": 1, "d_sum": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_H_IS_N,
            _P_W_IS_N,
            _P_R_LE_N,
            _P_C_LE_N,
            _P_POLY,
        ),
        steps=(
            ProofStep(
                "down-sampling is a matrix multiplication Phi_down X, by Lemma 4.1: "
                "d_std + d_⊕",
                {"d_std": 1, "d_sum": 1},
            ),
        ),
        kind="downsample",
        dims={"h": "n", "w": "n", "c": "n", "r": "2"},
        note=(
            "Definition B.2 leaves Phi_down an arbitrary linear map ('a linear transformation "
            "matrix'); tc0sim fixes area averaging (entries 1/r^2). dims need n even "
            "(r = 2 divides h)."
        ),
    ),
    Claim(
        id="FlowAR-L4.4",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.4",
        title="MLP layer",
        statement=(
            "For X in R^{h x w x c} and MLP(X, c, d) of Definition B.6, under h = w = n, "
            "c, d <= n, p <= poly(n), MLP(X, c, d) is computed by a uniform TC^0 circuit of "
            "size poly(n) and depth 2d_std + d_⊕ (informal version of Lemma C.1, proved in "
            "Appendix C.1)."
        ),
        depth={"d_std": 2, "d_sum": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_SQUARE,
            Precondition("c <= n (c, d <= n)", "c * c <= n"),
            Precondition("d <= n (c, d <= n)", "d * d <= n"),
            _P_POLY,
        ),
        steps=(
            ProofStep("X_{j,*} W by Lemma 4.1: d_std + d_⊕", {"d_std": 1, "d_sum": 1}),
            ProofStep("X_{j,*} W + b by Part 1 of Lemma 3.9: d_std", {"d_std": 1}),
        ),
        kind="mlp",
        dims={"n": "n*n", "c": "n", "d": "n"},
        note=(
            "Steps (Lemma C.1) add up to the total. The kind's token dim n is "
            "h*w = n^2, so 'c <= n' is checked as c * c <= n; h = w = n is structural (the "
            "lowering flattens h*w tokens). Definition B.12 declares MLP_i(., c, d): "
            "R^{.. x c} -> R^{.. x c} while Definition B.6 outputs d channels"
            "."
        ),
    ),
    Claim(
        id="FlowAR-L4.5",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.5",
        title="FFN (feed-forward) layer",
        statement=(
            "For X in R^{h x w x c} and FFN(X) of Definition B.7, under h = w = n, c <= n, "
            "p <= poly(n), FFN(X) is computed by a uniform TC^0 circuit of size poly(n) and "
            "depth 6d_std + 2d_⊕ (informal version of Lemma C.2)."
        ),
        depth={"d_std": 6, "d_sum": 2},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_SQUARE,
            _P_C_LE_N_TOKENS,
            _P_POLY,
        ),
        steps=(
            ProofStep(
                "X_{j,*} W_1 + b_1 by the proof of Lemma C.1: 2d_std + d_⊕",
                {"d_std": 2, "d_sum": 1},
            ),
            ProofStep("A_1 = sigma(X_{j,*} W + b) by Lemma 3.9: d_std", {"d_std": 1}),
            ProofStep(
                "A_2 = A_1 W_2 + b_2 by Lemma C.1: 2d_std + d_⊕", {"d_std": 2, "d_sum": 1}
            ),
            ProofStep("X_{j,*} + A_2 by Part 1 of Lemma 3.9: d_std", {"d_std": 1}),
        ),
        kind="ffn",
        dims={"n": "n*n", "c": "n"},
        note=(
            "Steps (Lemma C.2) add up to the total. Definition B.7 "
            "declares W_1, W_2 in R^{c x d}, b in R^{1 x d} and an h x w x d output "
            "but its formula uses c x c, and the lemma maps h x w x c to "
            "h x w x c; tc0sim uses c x c. The proof writes sigma(X W + b) without the "
            "subscripts 1. Token dim n = h*w = n^2 (see FlowAR-L4.4)."
        ),
    ),
    Claim(
        id="FlowAR-L4.6",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.6",
        title="Single attention layer",
        statement=(
            "For X in R^{h x w x c} and Attn(X) = D^-1 A X W_V of Definition B.5, under "
            "h = w = n, c <= n, p <= poly(n), Attn(X) is computed by a uniform TC^0 circuit of "
            "size poly(n) and depth 6(d_std + d_⊕) + d_exp (informal version of Lemma C.3)."
        ),
        depth={"d_std": 6, "d_sum": 6, "d_exp": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_SQUARE,
            Precondition("c <= n", "d * d <= n"),
            _P_POLY,
        ),
        steps=(
            ProofStep("W_Q W_K^T via Lemma 4.1: d_std + d_⊕", {"d_std": 1, "d_sum": 1}),
            ProofStep(
                "s_{i,j} = X_{i,*} W_Q W_K^T X_{j,*}^T by Lemma 4.1: 2(d_std + d_⊕)",
                {"d_std": 2, "d_sum": 2},
            ),
            ProofStep("A_{i,j} = exp(s_{i,j}) by Lemma 3.10: d_exp", {"d_exp": 1}),
            ProofStep("D = diag(A 1_n) by Lemma 3.9: d_⊕", {"d_sum": 1}),
            ProofStep("D^-1 by Lemma 3.9: d_std", {"d_std": 1}),
            ProofStep("A X W_V by Lemma 4.1: 2(d_std + d_⊕)", {"d_std": 2, "d_sum": 2}),
            ProofStep("D^-1 * A X W_V: d_std", {"d_std": 1}),
        ),
        kind="attention",
        dims={"n": "n*n", "d": "n"},
        note=(
            "STEPS DO NOT ADD UP: the steps of Lemma C.3 sum to "
            "7d_std + 6d_⊕ + d_exp, the stated total is d_all = 6(d_std + d_⊕) + d_exp"
            ". Taking D, D^-1 in parallel with A X W_V, the longest chain is "
            "A (3d_std + 3d_⊕ + d_exp) -> A X W_V (+2d_std + 2d_⊕) -> D^-1 * (+d_std) = "
            "6d_std + 5d_⊕ + d_exp, which is also what tc0sim's lowering gives: the stated total "
            "bounds it but equals neither the sequential sum nor the parallel chain. docs/operators.md "
            "quotes the stated total. D := diag(A 1_n) should use 1_{hw} (A is hw x hw), "
            "and 'for i, j in [n]' should be [hw]. The kind's channel "
            "dim is d, so the paper's 'c <= n' is checked as d * d <= n (token dim n = h*w)."
        ),
    ),
    Claim(
        id="FlowAR-L4.7",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.7",
        title="Layer normalization",
        statement=(
            "For X in R^{h x w x c} and LN(X) of Definition B.8, under h = w = n, c <= n, "
            "p <= poly(n), LN(X) is computed by a uniform TC^0 circuit of size poly(n) and "
            "depth 5d_std + 2d_⊕ + d_sqrt (informal version of Lemma C.4)."
        ),
        depth={"d_std": 5, "d_sum": 2, "d_sqrt": 1},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_SQUARE,
            _P_C_LE_N_TOKENS,
            _P_POLY,
        ),
        steps=(
            ProofStep(
                "mean mu_j by Part 1 and Part 3 of Lemma 3.9: d_std + d_⊕",
                {"d_std": 1, "d_sum": 1},
            ),
            ProofStep(
                "sigma_i^2 by Part 1 and Part 3 of Lemma 3.9: 2d_std + d_⊕",
                {"d_std": 2, "d_sum": 1},
            ),
            ProofStep(
                "Y_{j,*} by Lemma 3.9 and Lemma 3.11: 2d_std + d_⊕ (as printed)",
                {"d_std": 2, "d_sum": 1},
            ),
        ),
        kind="layernorm",
        dims={"n": "n*n", "c": "n"},
        note=(
            "STEPS DO NOT ADD UP: as printed (Lemma C.4) they sum to "
            "5d_std + 3d_⊕, with no d_sqrt, against the stated 5d_std + 2d_⊕ + d_sqrt. The "
            "third step cites Lemma 3.11 (square root) but prints '2d_std + d_⊕': a typo for "
            "2d_std + d_sqrt (subtract, square root, divide); with it the steps add up, and "
            "tc0sim's lowering gives exactly 5d_std + 2d_⊕ + d_sqrt. The second step calls "
            "sigma_i^2 a 'mean vector' and switches index j -> i. Token dim n = h*w = n^2."
        ),
    ),
    Claim(
        id="FlowAR-L4.8",
        paper=FLOWAR_PAPER,
        ref="Lemma 4.8",
        title="Flow-matching layer",
        statement=(
            "For the flow-matching layer NN of Definition B.12, under h = w = n, c <= n, "
            "p <= poly(n), NN(.,.,.) is computed by a uniform TC^0 circuit of size poly(n) and "
            "depth 26d_std + 12d_⊕ + 2d_sqrt + d_exp."
        ),
        depth={"d_std": 26, "d_sum": 12, "d_exp": 1, "d_sqrt": 2},
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_H_IS_N,
            _P_W_IS_N,
            _P_C_LE_N,
            _P_POLY,
        ),
        steps=(
            ProofStep(
                "Step 1: alpha_1, alpha_2, beta_1, beta_2, gamma_1, gamma_2 by Lemma C.1: "
                "2d_std + d_⊕",
                {"d_std": 2, "d_sum": 1},
            ),
            ProofStep(
                "Step 2: LN(F_i^t) by Lemma C.4: 5d_std + 2d_⊕ + d_sqrt",
                {"d_std": 5, "d_sum": 2, "d_sqrt": 1},
            ),
            ProofStep(
                "Step 2: A_1 = gamma_1 o LN(F_t) + beta_1 by Lemma 3.9: 2d_std", {"d_std": 2}
            ),
            ProofStep(
                "Step 2: A_2 = Attn(A_1) by Lemma C.3: 6(d_std + d_⊕) + d_exp",
                {"d_std": 6, "d_sum": 6, "d_exp": 1},
            ),
            ProofStep("Step 2: A_2 o alpha_1 by Lemma 3.9: d_std", {"d_std": 1}),
            ProofStep(
                "Step 3: LN(F'_i^t) by Lemma C.4: 5d_std + 2d_⊕ + d_sqrt",
                {"d_std": 5, "d_sum": 2, "d_sqrt": 1},
            ),
            ProofStep(
                "Step 3: A_3 = gamma_2 o LN(F^_t) + beta_2 by Lemma 3.9: 2d_std", {"d_std": 2}
            ),
            ProofStep(
                "Step 3: A_4 = MLP(A_3, c, c) by Lemma C.1: 2d_std + d_⊕",
                {"d_std": 2, "d_sum": 1},
            ),
            ProofStep("Step 3: A_4 o alpha_2 by Lemma 3.9: d_std", {"d_std": 1}),
        ),
        kind="flow_matching",
        dims={"h": "n", "w": "n", "c": "n"},
        note=(
            "Steps add up: Step 2 = 14d_std + 8d_⊕ + d_sqrt + d_exp and Step 3 = 10d_std + "
            "3d_⊕ + d_sqrt as stated, total 26d_std + 12d_⊕ + 2d_sqrt + d_exp"
            ". But the sum is sequential: Step 1 runs in parallel with LN(F_i^t), "
            "and Step 1 omits the addition Y^_i + t_i 1 of Definition B.12 (one d_std). "
            "With the paper's per-layer totals the longest chain is 24d_std + 11d_⊕ + "
            "2d_sqrt + d_exp (24d_std + 10d_⊕ + ... with the 6d_std + 5d_⊕ + d_exp attention "
            "chain of FlowAR-L4.6); in tc0sim's lowering W_Q W_K^T depends only on weights and "
            "leaves the chain too, so the DAG's critical path is 23d_std + 9d_⊕ + 2d_sqrt + "
            "d_exp. The stated total bounds all of these. The statement names the "
            "layer NN(X) of one tensor although NN takes (Y^_i, F_i^t, t_i); the proof mixes "
            "F_t, F^_t and F'_i^t for the same inputs."
        ),
    ),
    Claim(
        id="FlowAR-T4.9",
        paper=FLOWAR_PAPER,
        ref="Theorem 4.9",
        title="FlowAR model in TC^0",
        statement=(
            "Under h = w = n, c <= n, p <= poly(n), K = O(1) scales and d_std, d_⊕, d_sqrt, "
            "d_exp = O(1), the FlowAR model is simulated by a uniform TC^0 circuit family; "
            "the proof gives size poly(n) and depth O(1)."
        ),
        depth_o1=True,
        size="poly(n)",
        preconditions=(
            _P_H_IS_N,
            _P_W_IS_N,
            _P_C_LE_N,
            _P_POLY,
            _P_K_CONSTANT,
            Precondition("d_std, d_⊕, d_sqrt, d_exp = O(1)", None),
        ),
        kind="flowar",
        dims={"h": "n", "w": "n", "c": "n"},
        note=(
            "The statement claims membership in uniform TC^0 only; size poly(n) and depth O(1) "
            "are the proof's. The proof cites Lemmas 4.2, 4.3, 4.6, 4.5, 4.8 per "
            "scale; no lemma covers the flow itself (Definition B.10 linear, B.11 Bezier), "
            "which is O(1) by Lemma 3.9, and inference does not use the down-sampling "
            "tokenizer that Lemma 4.3 covers. Definition B.13 reads "
            "Attn_i(Z_1) for Z_i (corrected in docs/models.md) and slices h~_{i-1}:h~_{i-1}, "
            "w~_i:w~_i for h~_{i-1}:h~_i, w~_{i-1}:w~_i; the same definition up-samples Y~_{i-1} in "
            "every phi_up,j, j < i, where D.8 has Y~_j. Definition B.3 outputs "
            "{Y^2, Y^2, ..., Y^K} for {Y^1, ..., Y^K}. Definition B.11 says the "
            "Bezier velocity is 'constant across t due to linear interpolation'; "
            "it depends on t. Part 5 (d_* = O(1)) restates Lemmas 3.9-3.11. dims: final map "
            "h x w, c channels; K and a come from the model file."
        ),
    ),
    Claim(
        id="FlowAR-L5.2",
        paper=FLOWAR_PAPER,
        ref="Lemma 5.2",
        title="Fast attention (AAttC) runtime",
        statement=(
            "For AAttC of Definition 5.1 with d = O(log n), R = Theta(sqrt(log n)) and "
            "delta = 1/poly(n), the computation takes T(n, n^{o(1)}, d) = n^{1+o(1)} time "
            "(Theorem 1.4 of Alman and Song 2023)."
        ),
        runtime="n^{1+o(1)}",
        preconditions=(
            _P_D_LOG,
            Precondition("R = Theta(sqrt(log n))", None),
            Precondition("delta = 1/poly(n)", None),
        ),
        kind="aattc",
        dims={"n": "n", "d": "2"},
        note=(
            "Not in the required list; recorded because tc0sim's aattc kind cites it. "
            "Definition 5.1 calls Q, K, V in R^{n x d} 'weight matrices' whereas "
            "tc0sim's aattc takes W_Q, W_K, W_V [d,d] and a degree g."
        ),
        fixed=(
            "d = 2 and the degree g fixed; the claim is about the cited algorithm, whose "
            "operation count tc0sim's aattc lowering stands in for"
        ),
    ),
    Claim(
        id="FlowAR-L5.5",
        paper=FLOWAR_PAPER,
        ref="Lemma 5.5",
        title="Inference runtime of FlowAR",
        statement=(
            "For X in R^{h x w x c} with h = w = n, c = O(log n), K = O(1) scales, "
            "r_i = a^{K-i}, and the layers of Definitions B.1, B.5, B.7, B.12, the total "
            "inference runtime of FlowAR is O(n^{4+o(1)}) (informal version of Lemma D.1)."
        ),
        runtime="O(n^{4+o(1)})",
        preconditions=(
            _P_SQUARE,
            _P_C_LOG,
            _P_K_CONSTANT,
            _P_GEOMETRIC,
        ),
        kind="flowar",
        dims={"h": "n", "w": "n", "c": "2"},
        note=(
            "The proof (Lemma D.1) fixes a = 2 (phi_up,i(., 2), n/2^{K-j}) "
            "although the statement allows any a. Part 1's per-scale sum "
            "O(n^2 c 2^{-2K} (1 - 4^{-i})) does not follow from the per-layer "
            "terms; the total O(n^{2+o(1)}) is unaffected."
        ),
        fixed=(
            "c = 2, K and a at the model defaults; attention over Theta(n^2) tokens has "
            "Theta(n^4) gates"
        ),
    ),
    Claim(
        id="FlowAR-L5.6",
        paper=FLOWAR_PAPER,
        ref="Lemma 5.6",
        title="Inference runtime of fast FlowAR",
        statement=(
            "With the same parameters as Lemma 5.5 but AAttC_i (Definition 5.1) for the "
            "attention and the fast flow-matching layers FNN_i (Definition 5.3), the total "
            "inference runtime is O(n^{2+o(1)}) (informal version of Lemma D.2)."
        ),
        runtime="O(n^{2+o(1)})",
        preconditions=(
            _P_SQUARE,
            _P_C_LOG,
            _P_K_CONSTANT,
            _P_GEOMETRIC,
        ),
        kind="fast_flowar",
        dims={"h": "n", "w": "n", "c": "2"},
        note=(
            "Copy-paste slips: 'Consider the original FlowAR inference pipeline' and 'the "
            "total inference runtime of FlowAR' (again 1447, 1477) for the "
            "fast architecture. Lemma D.2 Part 4 names its total T_Attn for "
            "T_FM. The proof applies Lemma 5.2, whose R = Theta(sqrt(log n)) and "
            "delta = 1/poly(n) are not assumed here. Definition 5.3 says AAttC_i 'is defined "
            "in Definition B.5', for Definition 5.1."
        ),
        fixed="c = 2, K, a and g at the model defaults",
    ),
    Claim(
        id="FlowAR-L5.7",
        paper=FLOWAR_PAPER,
        ref="Lemma 5.7",
        title="Error between fast FlowAR and FlowAR",
        statement=(
            "Under certain conditions (formal Lemma D.8: h = w = n, c = O(log n), K = O(1), "
            "all entries bounded by R = O(sqrt(log n))), the l_inf error between the final "
            "outputs is ||Y~'_K - Y~_K||_inf <= 1/poly(n)."
        ),
        preconditions=(
            _P_SQUARE,
            _P_C_LOG,
            _P_K_CONSTANT,
            Precondition("R = O(sqrt(log n))", None),
        ),
        unchecked=(
            "approximation-error claim over the reals; the evaluate interpreter can measure "
            "the fast_flowar vs flowar gap on instances but not prove a 1/poly(n) bound"
        ),
        note=(
            "The informal statement says only 'under certain conditions'. The "
            "entry bound is R = O(sqrt(log n)) in Lemma D.8, R = Theta(sqrt(log n)) "
            "in Lemma 5.2 and R = o(sqrt(log n)) in Theorem 5.8. The "
            "proof swaps the argument order FNN_1(FF_1^{t_1}, Y^'_1, t_1) against "
            "Definition 5.3's FNN_i(Y^_i, F_i^{t_i}, t_i), writes Y^_k + 1 for Y^_{k+1}"
            ", and its constants O(k R^{g+6} c^3), O(k R^{g+1} c) use k and g that "
            "Lemma D.8 does not define. Definition 5.4 repeats B.13's Z_1 and slice typos"
            "."
        ),
    ),
    Claim(
        id="FlowAR-T5.8",
        paper=FLOWAR_PAPER,
        ref="Theorem 5.8",
        title="Almost quadratic time algorithm",
        statement=(
            "Suppose d = O(log n) and R = o(sqrt(log n)). There is an algorithm that "
            "approximates the FlowAR architecture up to 1/poly(n) additive error in "
            "O(n^{2+o(1)}) time."
        ),
        runtime="O(n^{2+o(1)})",
        preconditions=(
            _P_D_LOG,
            Precondition("R = o(sqrt(log n))", None),
        ),
        unchecked=(
            "runtime and approximation-error theorem: it claims no circuit depth or size, so "
            "there is nothing to audit on a DAG (fast_flowar's O(1) depth would be a tc0sim "
            "corollary of Theorem 4.9's argument, not a claim of the paper)"
        ),
        note=(
            "Proof: 'combining the result of Lemma 5.6 and Lemma 5.7'. The theorem "
            "makes no depth or size claim, so depth_o1 is False and size is empty, although a "
            "whole-model O(1)-depth/poly(n)-size reading was suggested for it. R = o(sqrt(log "
            "n)) contradicts Lemma 5.2's R = Theta(sqrt(log n)); d = O(log n) names the "
            "attention width, which FlowAR calls c. Section 5.5 announces 'a quadratic-time "
            "algorithm' for the almost-quadratic O(n^{2+o(1)})."
        ),
    ),
    # ------------------------------------------------------------------ universal approximation
    # begin: claims of the universal-approximation papers (issue 16; checked by tc0sim.approx
    # through tc0sim.audit.approx_checks). Numbering of the ICML 2025 version.
    Claim(
        id="UA-D5.2",
        paper=UA_PAPER,
        ref="Definition 5.2",
        title="Tokenwise separateness",
        statement=(
            "Embeddings X^(1), ..., X^(N) in R^{n x d} are tokenwise (gamma_min, gamma_max, delta)-"
            "separated when (i) ||X_k^(i)|| > gamma_min, (ii) ||X_k^(i)|| < gamma_max for all i, k, "
            "and (iii) ||X_k^(i) - X_l^(j)|| > delta whenever X_k^(i) != X_l^(j); (gamma, delta)-"
            "separated with (ii) and (iii) only, (delta)-separated with (iii) only."
        ),
        unchecked=(
            "a definition: `tc0sim approx separateness` measures its constants on given embeddings "
            "(exact norms of the float64 tokens, correctly rounded)"
        ),
        note=(
            "Condition (iii) is printed ||X_k^(i) X_l^(j)||_2 (the minus sign is lost). The "
            "inequalities are strict, so the measured minimum norm, maximum norm and minimum "
            "distance are the limits: the embeddings are separated for every gamma_min below, "
            "gamma_max above and delta below them. Part 2 calls gamma_max simply gamma."
        ),
    ),
    Claim(
        id="UA-D5.3",
        paper=UA_PAPER,
        ref="Definition 5.3",
        title="(gamma, delta)-contextual mapping",
        statement=(
            "q: R^{n x d} -> R^{n x d} is a (gamma, delta)-contextual mapping for X^(1), ..., X^(N) "
            "when ||q(X^(i))_k|| < gamma for all i, k, and ||q(X^(i))_k - q(X^(j))_l|| > delta for "
            "all i, j, k, l with V^(i) != V^(j) or X_k^(i) != X_l^(j)."
        ),
        unchecked=(
            "a definition: `tc0sim approx contextual` measures the gamma and delta an attention "
            "layer achieves, evaluated bit-exactly at p bits"
        ),
        note=(
            "The distance is again printed without its minus sign. 'Contextual sensitivity gamma' "
            "is an upper bound on the output norms, not a sensitivity. The pairs include i = j with "
            "k != l, so distinct tokens of one sequence must get distinct outputs too. At finite "
            "precision a contextual mapping can collapse: two contexts whose exact outputs differ "
            "can round to the same p-bit vector (delta = 0); `--sweep-precision` finds the least p "
            "at which an instance stays separated."
        ),
    ),
    Claim(
        id="UA-L5.4",
        paper=UA_PAPER,
        ref="Lemma 5.4",
        title="Any-rank attention as a contextual mapping",
        statement=(
            "For (gamma_min, gamma_max, eps)-tokenwise separated embeddings with vocabulary V and "
            "X_k^(i) != X_l^(i) within each sequence, with gamma = gamma_max + eps/4, "
            "delta = exp(-5 eps^-1 |V|^4 d kappa gamma_max log L), kappa = gamma_max/gamma_min, "
            "W^(O) in R^{d x s}, W_V, W_K, W_Q in R^{s x d}: 1-layer single-head attention is a "
            "(gamma, delta)-contextual mapping for the embeddings with weight matrices W^(O), W_V, "
            "W_K, W_Q (Lemma 2.2 of Hu et al. 2024)."
        ),
        preconditions=(
            Precondition("the embeddings are (gamma_min, gamma_max, eps)-tokenwise separated", None),
            Precondition("X_k^(i) != X_l^(i) for every i and k != l", None),
        ),
        note=(
            "The statement never says which weights: read for all weights it is false (W_V = 0 maps "
            "every sequence to 0, so no delta > 0 holds; the audit evaluates this instance), so it "
            "must mean that suitable weights exist (the construction of Hu et al., after Kajitsuka "
            "and Sato 2024), which tc0sim does not build. L is not defined (it is the sequence "
            "length n) and 'k, l in [L]' omits k != l. The constants: |V|^4 sits in the exponent, "
            "so delta underflows every float format for all but toy vocabularies, and resolving "
            "outputs delta apart at norm gamma needs about log2(gamma/delta) significand bits, "
            "which grows as |V|^4 d kappa gamma_max log(n) / eps: far beyond the p <= poly(n) "
            "precision of the circuit-complexity papers once |V| counts every token of the data "
            "(Definition 5.1). Lemma C.1 applies it to its quantized grid [delta:delta:1]^d x "
            "[1+delta:delta:2]^d x ... claiming (sqrt(d), sqrt(d)(L_0 - delta), sqrt(d) delta)-separateness; "
            "the grid's least norm is sqrt(d) delta, its largest sqrt(d) L_0 and its least distance delta "
            "(two tokens may differ in one coordinate), as the audit measures: with the right constants "
            "the exponent of Delta grows by a factor of about sqrt(d)/delta."
        ),
    ),
    Claim(
        id="UA-L6.3",
        paper=UA_PAPER,
        ref="Lemma 6.3",
        title="Two layers perturbation",
        statement=(
            "If ||g_i - Phi_up,i|| <= eps_1,i, ||f_i - tau_i|| <= eps_2,i and f_i is "
            "K_1,i-Lipschitz, then ||f_i o g_i - tau_i o Phi_up,i|| <= K_1,i eps_1,i + eps_2,i."
        ),
        preconditions=(
            Precondition("||g_i - Phi_up,i|| <= eps_1,i (sup over the inputs)", None),
            Precondition("||f_i - tau_i|| <= eps_2,i (sup over the inputs)", None),
            Precondition("f_i is K_1,i-Lipschitz", None),
        ),
        steps=(
            ProofStep("add and subtract f_i o Phi_up,i; triangle inequality"),
            ProofStep("||f_i o g_i - f_i o Phi_up,i|| <= K_1,i eps_1,i by the Lipschitz bound"),
            ProofStep("||(f_i - tau_i) o Phi_up,i|| <= ||f_i - tau_i|| <= eps_2,i"),
        ),
        note=(
            "Checked on every two consecutive layers of var chains: the exact layers are "
            "evaluated at 256 bits, the replacements at p bits or with aattc, K_1 is the stated "
            "Lipschitz bound of the exact second layer on the segment between its two inputs. The "
            "proof writes f_i o g_i - f_i o Phi_up,i as f_i o (g_i - Phi_up,i), which holds only for "
            "linear f_i; the Lipschitz bound gives the same estimate. The norms are never defined "
            "(the bound needs sup norms over the whole input set); 'Theorem 6.1' is Lemma 6.1; "
            "f_r and g_i are each called 'r K-Lipschitz functions' and the constant K of "
            "Assumption 6.2 is then renamed K_1,i."
        ),
    ),
    Claim(
        id="UA-L6.4",
        paper=UA_PAPER,
        ref="Lemma 6.4",
        title="Perturbation of recursively composed functions, one layer different",
        statement=(
            "If ||u_j(w) - v_j(w)|| <= eps for any w and ||v_i(x)|| <= K_2 ||x||, then for fixed j "
            "||v_{n+1} o ... o v_{j+1} o u_j o ... o u_1 - v_n o ... o v_j o u_{j-1} o ... o u_0|| "
            "<= K_2^{n-j} eps."
        ),
        preconditions=(
            Precondition("||u_j(w) - v_j(w)|| <= eps for any w", None),
            Precondition("||v_i(x)|| <= K_2 ||x|| (a growth bound, as printed)", None),
        ),
        steps=(
            ProofStep("w = u_{j-1} o ... o u_0 (x)"),
            ProofStep("the difference is v_n o ... o v_{j+1} applied to u_j(w) - v_j(w) ('by linearity')"),
            ProofStep("each v_i multiplies the norm by at most K_2: K_2^{n-j} eps"),
        ),
        note=(
            "The hypothesis is a growth bound ||v_i(x)|| <= K_2 ||x||, but the proof's second step "
            "needs v_i(a) - v_i(b) = v_i(a - b) ('linearity'), false for attention and FFN layers; "
            "what the argument needs is a Lipschitz bound ||v_i(a) - v_i(b)|| <= K_2 ||a - b||. "
            "The audit evaluates a counterexample to the printed statement (attention with a "
            "score tie, which meets the growth bound with K_2 = sqrt(n) ||W_V||) and checks the "
            "Lipschitz reading on var chains. Attention is not globally Lipschitz, so K_2 depends "
            "on the radius of the inputs; and p-bit layers are not Lipschitz at all (rounding is a "
            "step function), so tc0sim telescopes along the approximate trajectory and uses only "
            "the exact layers' constants."
        ),
    ),
    Claim(
        id="UA-L6.5",
        paper=UA_PAPER,
        ref="Lemma 6.5",
        title="Perturbation of recursively composed functions, all layers different",
        statement=(
            "With u_0 and v_{n+1} the identity, ||u_n o ... o u_1 - v_n o ... o v_1|| <= "
            "sum_{j=1}^{n} ||v_{n+1} o ... o v_{j+1} o u_j o ... o u_1 - v_n o ... o v_j o "
            "u_{j-1} o ... o u_0||."
        ),
        steps=(
            ProofStep("telescoping sum of the hybrids"),
            ProofStep("triangle inequality"),
        ),
        note=(
            "Checked on var chains: the end-to-end error against the sum of the measured hybrid "
            "differences (every hybrid evaluated at 256 bits on the approximate trajectory). Correct "
            "as stated; with v_j the p-bit layers the hybrids u o ... o u o v o ... o v are the ones "
            "whose exact layers' Lipschitz constants suffice."
        ),
    ),
    Claim(
        id="UA-T6.6",
        paper=UA_PAPER,
        ref="Theorem 6.6",
        title="Universality of the VAR Transformer",
        statement=(
            "For f_word2img satisfying Assumption 6.2 there is a VAR Transformer tau_VAR with "
            "||tau_VAR - f_word2img|| <= O(eps); the proof: sum_j K_2^{n-j} (K_1,i eps_1,i + eps_2,i) "
            "= (K_2^n - 1)/(K_2 - 1) (K_1,i eps_1,i + eps_2,i) <= K_2^n (K_1,i eps_1,i + eps_2,i) "
            "= O(eps), assuming K_2 > 2."
        ),
        preconditions=(
            Precondition("Assumption 6.2 (f_i, g_i K-Lipschitz; g_i approximated by Phi_up,i)", None),
            Precondition("K_2 > 2", None),
            Precondition("eps_1,i, eps_2,i = O(eps)", None),
        ),
        steps=(
            ProofStep("||tau_VAR - f|| = ||o_i (f_i o g_i) - o_i (tau_i o Phi_up,i)|| (Definition 3.14)"),
            ProofStep("'=' sum_j K_2^{n-j} (K_1,i eps_1,i + eps_2,i) by Lemma 6.4 (an inequality)"),
            ProofStep("geometric sum (K_2^n - 1)/(K_2 - 1)"),
            ProofStep("<= K_2^n (...), which needs K_2 >= 2"),
            ProofStep("= O(eps) as eps_1,i, eps_2,i = O(eps)"),
        ),
        note=(
            "Checked on var chains (seeded weights, p-bit and aattc replacements) as the rigorous form of the "
            "proof's first two steps: ||exact - approximate|| <= sum_j eps_j prod_{i>j} L_i with "
            "measured replacement errors eps_j and stated Lipschitz bounds L_i; the bound holds but "
            "is loose by orders of magnitude, and the paper's uniform form sum_j K_2^{n-j} eps_j with "
            "K_2 = max L_i is looser still. The second step is an inequality printed as '='; the "
            "summand uses the index i of K_1,i, eps_1,i, eps_2,i inside a sum over j; n (layers) "
            "and r (scales) are mixed. O(eps) hides K_2^n, exponential in the number of layers, "
            "and eps_2,i = O(eps) is bought with O((1/eps)^{d h_r w_r}) FFN neurons (Lemma 6.1)."
        ),
    ),
    Claim(
        id="UA-C7.1",
        paper=UA_PAPER,
        ref="Corollary 7.1",
        title="Two layers perturbation with down interpolation (FlowAR)",
        statement=(
            "If ||g_i - Phi_down,i|| <= eps_1,i, ||f_i - tau_i|| <= eps_2,i and f_i is "
            "K_1,i-Lipschitz, then ||f_i o g_i - tau_i o Phi_down,i|| <= K_1,i eps_1,i + eps_2,i."
        ),
        preconditions=(
            Precondition("||g_i - Phi_down,i|| <= eps_1,i", None),
            Precondition("||f_i - tau_i|| <= eps_2,i", None),
            Precondition("f_i is K_1,i-Lipschitz", None),
        ),
        unchecked=(
            "the same argument as Lemma 6.3 with Phi_down; tc0sim.approx cuts only var models into "
            "layer chains, so no FlowAR instance is measured"
        ),
        note=(
            "The proof is Lemma 6.3's word for word. It pairs tau_i with Phi_down,i, but FlowAR's "
            "autoregressive transformer (Definition D.10) composes the up-sampling phi_up,i of "
            "Definition D.3; the down-sampling phi_down,i (Definition D.4) only makes the tokenizer's "
            "token maps (Definition D.5), and Corollary 7.2's proof is back to Phi_up,i. The area "
            "down-sampler by a factor r has operator norm 1/r (the audit computes it from the matrix), "
            "so it contracts errors that pass through it; the bicubic up-sampler does not."
        ),
    ),
    Claim(
        id="UA-C7.2",
        paper=UA_PAPER,
        ref="Corollary 7.2",
        title="Universality of FlowAR",
        statement=(
            "For f_word2img satisfying Assumption 6.2 there is a FlowAR model tau_FlowAR with "
            "||tau_FlowAR - f_word2img|| <= O(eps)."
        ),
        preconditions=(Precondition("Assumption 6.2", None), Precondition("K_2 > 2", None)),
        unchecked="the same derivation as Theorem 6.6; no FlowAR layer chain is measured",
        note=(
            "The proof composes tau_i o Phi_up,i, copied from Theorem 6.6, where Corollary 7.1 has "
            "Phi_down,i; it is called the 'Informal Version of Corollary 4.2' although Corollary 4.2 "
            "is the informal one. The same findings as Theorem 6.6 apply (K_2^n hidden in O(eps))."
        ),
    ),
    # end: claims of the universal-approximation papers
)

_BY_ID: dict[str, Claim] = {claim.id: claim for claim in CLAIMS}


def get(claim_id: str) -> Claim:
    """Return the claim with this id; an unknown id is a :class:`ConfigError`."""
    try:
        return _BY_ID[claim_id]
    except KeyError:
        raise ConfigError(f"unknown claim {claim_id!r}") from None
