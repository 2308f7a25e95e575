"""Claims of the universal-approximation papers, tested on instances.

Papers: *Fundamental Limits of Visual Autoregressive Transformers: Universal Approximation
Abilities* and *Universal Approximation of Visual Autoregressive Transformers* (Yifang Chen,
Xiaoyu Li, Yingyu Liang, Zhenmei Shi, Zhao Song; arXiv 2502.06167). Modules:

* :mod:`tc0sim.approx.exact` — exact norms and distances of float rows (integer arithmetic),
  correctly rounded square roots, and a float64 screen with a rigorous error bound;
* :mod:`tc0sim.approx.separateness` — tokenwise separateness (Definition 5.2);
* :mod:`tc0sim.approx.contextual` — contextual mapping (Definition 5.3) of an attention layer
  evaluated bit-exactly, and Lemma 5.4's constants;
* :mod:`tc0sim.approx.lipschitz` — operator norms and Lipschitz bounds of the layers;
* :mod:`tc0sim.approx.chain` — a ``var`` model as a chain of layers, each with its Lipschitz bound;
* :mod:`tc0sim.approx.perturbation` — Lemmas 6.4–6.5 / Theorem 6.6 measured on such a chain.
"""
