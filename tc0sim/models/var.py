"""The VAR model (VAR Section 4; Chen et al. (arXiv:2502.06167) Definitions 3.7–3.11 for the pyramid up-interpolation).

Phase 1 — the VAR transformer ``TF = g_m ∘ Attn_m ∘ Φ_up,m ∘ … ∘ g_1 ∘ Attn_1 ∘ Φ_up,1`` (Chen et al. (arXiv:2502.06167)
Definition 3.11, VAR Definition 4.9). The scales give the token map sizes
``1×1 = h_1 × w_1 < … < h_K × w_K = h × w`` (dims h, w: the final token map). Level k reads the pyramid ``X_1, …, X_{k−1}`` of level k − 1 and forms
``Φ_up,k``: ``Y_1 = X_init`` and ``Y_{i+1} = φ_up,i+1(X_i)`` (X_i up-interpolated from ``h_i × w_i``
to ``h_{i+1} × w_{i+1}``, Chen et al. (arXiv:2502.06167) Section 3.3 and Definition 3.9); the ``Σ_{i≤k} h_i w_i`` tokens are
concatenated (Remark 3.10) and pass ``layers`` transformer layers ``g_i ∘ Attn_i``; they are split
back into the maps ``X_1, …, X_k``. After level K the pyramid ``r_1, …, r_K`` is the output of TF.

Phase 2 — feature-map reconstruction (VAR Section 4.3, Lemma 5.9): every ``r_k`` is
up-interpolated to the final size ``h_K × w_K`` (``r_K`` already has it), post-processed by its own
convolution block (Definition 4.10) and the K maps are summed with one ⊕.

Phase 3 — the VQ-VAE decoder (VAR Section 4.4, Lemma 5.10): a list of blocks, ``"resnet"``
(``X + Conv(ReLU(Conv(X)))``), ``"attn"`` (Attn of Definition 4.5 over the pixels) and ``"up"``
(up-interpolation ×2, then a convolution).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.budget import repeat_count
from tc0sim.ir.kind import Kind, Param
from tc0sim.models.common import check_positive_int, split_maps, tokens, weight
from tc0sim.ops.attention import attention
from tc0sim.ops.conv2d import conv2d
from tc0sim.ops.ffn import ffn
from tc0sim.ops.layernorm import layernorm
from tc0sim.ops.mlp import mlp
from tc0sim.ops.upsample import upsample

REF = "VAR Section 4"
G_COMPONENTS = ("ffn", "mlp", "ln")
"""The components a layer's g_i may chain (VAR Definitions 4.6, 4.7; Chen et al. (arXiv:2502.06167) Definition 3.5)."""
DECODER_BLOCKS = ("resnet", "attn", "up")
"""The VQ-VAE decoder blocks of VAR Section 4.4."""


def parse_scales(value: Any, h: int, w: int) -> list[tuple[int, int]]:
    """The pyramid sizes ``[(h_1, w_1), …, (h_K, w_K) = (h, w)]``, validated.

    ``value`` is a list of sizes (an int for a square map or a pair ``[h, w]``) ending with the final
    map h × w, or an int K: the geometric pyramid ``1×1, ⌈h/2^(K−2)⌉ × ⌈w/2^(K−2)⌉, …, h × w``
    (each level halves the next one, the first is X_init's 1×1).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        levels = check_positive_int("var", "scales", value)
        value = [1] + [[-(-h // 2 ** (levels - k)), -(-w // 2 ** (levels - k))] for k in range(2, levels + 1)]
        pyramid = [(1, 1)] + [tuple(size) for size in value[1:]]
        if levels > 1 and any(not (a[0] < b[0] and a[1] < b[1]) for a, b in zip(pyramid, pyramid[1:])):
            raise ConfigError(
                f"var: {levels} levels do not fit the final map {h}×{w}: the geometric pyramid would be "
                f"{', '.join(f'{y}×{x}' for y, x in pyramid)}, not strictly increasing (Chen et al. (arXiv:2502.06167) Definition 3.7)"
            )
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"var: param 'scales' must be a number of levels or a non-empty list of sizes, got {value!r}")
    sizes: list[tuple[int, int]] = []
    for k, entry in enumerate(value, start=1):
        pair = (entry, entry) if not isinstance(entry, (list, tuple)) else tuple(entry)
        if len(pair) != 2 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in pair):
            raise ConfigError(f"var: scale {k} must be a positive integer or a pair [h, w] of them, got {entry!r}")
        sizes.append((int(pair[0]), int(pair[1])))
    if sizes[0] != (1, 1):
        raise ConfigError(
            f"var: the first scale must be 1 (the initial token map X_init is 1×1×c, Chen et al. (arXiv:2502.06167) Definition 3.8), "
            f"got {sizes[0][0]}×{sizes[0][1]}"
        )
    for k in range(1, len(sizes)):
        (h0, w0), (h1, w1) = sizes[k - 1], sizes[k]
        if not (h0 < h1 and w0 < w1):
            raise ConfigError(
                f"var: scales must increase strictly in height and width (Chen et al. (arXiv:2502.06167) Definition 3.7: "
                f"h_(r−1) < h_r, w_(r−1) < w_r); scale {k} is {h0}×{w0} and scale {k + 1} is {h1}×{w1}"
            )
    if sizes[-1] != (h, w):
        raise ConfigError(
            f"var: the last scale {sizes[-1][0]}×{sizes[-1][1]} must be the final token map h×w = {h}×{w} (the dims)"
        )
    return sizes


def parse_g(value: Any) -> tuple[str, ...]:
    """The components of g_i, in the order they are applied; ``"identity"`` (or ``[]``) is none."""
    if value == "identity":
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or any(n not in G_COMPONENTS for n in names):
        raise ConfigError(
            f"var: param 'g' must be one of {', '.join(G_COMPONENTS)}, 'identity' or a list of "
            f"{', '.join(G_COMPONENTS)}; got {value!r}"
        )
    return tuple(names)


def parse_decoder(value: Any) -> tuple[str, ...]:
    """The VQ-VAE decoder blocks, in order."""
    if not isinstance(value, (list, tuple)) or any(block not in DECODER_BLOCKS for block in value):
        raise ConfigError(f"var: param 'decoder' must be a list of blocks among {', '.join(DECODER_BLOCKS)}, got {value!r}")
    return tuple(value)


def _attention(b: Builder, x: Tensor, prefix: str) -> Tensor:
    c = x.shape[1]
    w_q, w_k, w_v = (weight(b, f"{prefix}.{n}", (c, c)) for n in ("W_Q", "W_K", "W_V"))
    return attention(b, x, w_q, w_k, w_v)


def _g(b: Builder, x: Tensor, components: tuple[str, ...], prefix: str) -> Tensor:
    """g_i: the layer's components other than attention, applied in order."""
    c = x.shape[1]
    for name in components:
        if name == "ffn":
            w1, w2 = weight(b, f"{prefix}.FFN.W1", (c, c)), weight(b, f"{prefix}.FFN.W2", (c, c))
            b1, b2 = weight(b, f"{prefix}.FFN.b1", (c,)), weight(b, f"{prefix}.FFN.b2", (c,))
            x = ffn(b, x, w1, w2, b1, b2)
        elif name == "mlp":
            x = mlp(b, x, weight(b, f"{prefix}.MLP.W", (c, c)), weight(b, f"{prefix}.MLP.b", (c,)))
        else:
            x = layernorm(b, x)
    return x


def _conv(b: Builder, x: Tensor, kernel_size: int, prefix: str) -> Tensor:
    c = x.shape[2]
    kernel = weight(b, f"{prefix}.K", (c, kernel_size, kernel_size, c))
    return conv2d(b, x, kernel, weight(b, f"{prefix}.b", (c,)))


def var_transformer(
    b: Builder,
    x_init: Tensor,
    sizes: Sequence[tuple[int, int]],
    layers: int,
    components: tuple[str, ...],
    attend: Callable[[Builder, Tensor, str], Tensor] = _attention,
) -> list[Tensor]:
    """Phase 1, TF of Chen et al. (arXiv:2502.06167) Definition 3.11: returns the pyramid ``r_1, …, r_K`` of token maps."""
    pyramid: list[Tensor] = []
    layer = 0
    for level in range(1, len(sizes) + 1):
        with b.scope(f"level{level}", "VAR [000] Definitions 3.9, 3.11"):
            with b.scope("pyramid_up", "VAR [000] Definition 3.9"):
                maps = [x_init] + [upsample(b, m, *sizes[i + 1]) for i, m in enumerate(pyramid)]
            x = tokens(b, maps)
            for _ in range(layers):
                layer += 1
                with b.scope(f"layer{layer}", "VAR Definition 4.9"):
                    x = attend(b, x, f"L{layer}")
                    with b.scope("g", "VAR Definitions 4.6, 4.7"):
                        x = _g(b, x, components, f"L{layer}")
            pyramid = split_maps(b, x, sizes[:level])
    return pyramid


def feature_map(b: Builder, pyramid: Sequence[Tensor], kernel_size: int) -> Tensor:
    """Phase 2: ⊕_k Conv_k(φ_up(r_k → h_K × w_K)) (VAR Section 4.3)."""
    h, w, c = pyramid[-1].shape
    parts = []
    for k, r in enumerate(pyramid, start=1):
        with b.scope(f"scale{k}", "VAR Section 4.3"):
            up = r if r.shape == (h, w, c) else upsample(b, r, h, w)
            parts.append(b.reshape(_conv(b, up, kernel_size, f"phase2.conv{k}"), (1, h, w, c)))
    if len(parts) == 1:
        return b.reshape(parts[0], (h, w, c))
    with b.scope("sum", "VAR Section 4.3"):
        return b.sum(b.concat(parts, axis=0), axis=0)


def decoder(b: Builder, x: Tensor, blocks: Sequence[str], kernel_size: int) -> Tensor:
    """Phase 3, the VQ-VAE decoder (VAR Section 4.4): resnet, attention and up-sample blocks."""
    for j, block in enumerate(blocks, start=1):
        with b.scope(f"block{j}_{block}", "VAR Section 4.4 / Lemma 5.10"):
            x = decoder_block(b, x, block, kernel_size, f"dec{j}")
    return x


def decoder_block(
    b: Builder,
    x: Tensor,
    block: str,
    kernel_size: int,
    prefix: str,
    attend: Callable[[Builder, Tensor, str], Tensor] = _attention,
) -> Tensor:
    """One decoder block on X[h, w, c]; its weights are named ``prefix.…``."""
    h, w, c = x.shape
    if block == "resnet":
        inner = b.relu(_conv(b, x, kernel_size, f"{prefix}.conv1"))
        return b.add(x, _conv(b, inner, kernel_size, f"{prefix}.conv2"))
    if block == "attn":
        return b.reshape(attend(b, b.reshape(x, (h * w, c)), prefix), (h, w, c))
    return _conv(b, upsample(b, x, 2 * h, 2 * w), kernel_size, f"{prefix}.conv")


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    sizes = parse_scales(params["scales"], dims["h"], dims["w"])
    layers, components, kernel_size, blocks = params["layers"], params["g"], params["kernel"], params["decoder"]
    c = dims["c"]
    with b.scope("var", REF):
        x_init = b.input("X_init", (1, 1, c))
        with b.scope("phase1", "VAR Definition 4.9 / Lemma 5.8"):
            pyramid = var_transformer(b, x_init, sizes, layers, components)
        with b.scope("phase2", "VAR Section 4.3 / Lemma 5.9"):
            features = feature_map(b, pyramid, kernel_size)
        with b.scope("phase3", "VAR Section 4.4 / Lemma 5.10"):
            image = decoder(b, features, blocks, kernel_size)
    return {"out": image, "tokens": tokens(b, pyramid), "feature_map": features}


MIN_BLOCK_NODES = 40
"""At least this many tensor nodes per transformer layer and scale (measured: 42 with g = identity, 52 with mlp, 58 with ln, 65 with ffn)."""

MIN_DECODER_NODES = 20
"""At least this many tensor nodes per decoder block (measured: up 26, resnet 36, attn 46)."""


KINDS: tuple[Kind, ...] = (
    Kind(
        "var",
        ("h", "w", "c"),
        _build,
        "VAR Section 4, Theorem 5.11",
        params=(
            Param("scales", "any", 3, "K, the number of levels (geometric pyramid), or the list of sizes "
                  "(an integer or a pair [h, w] each) from 1 to the final map h × w"),
            Param("layers", "int", 1, "transformer layers g_i ∘ Attn_i per level", min=1),
            Param("g", "any", "ffn", f"g_i: one of {', '.join(G_COMPONENTS)}, 'identity' or a list of them", parse=parse_g),
            Param("kernel", "int", 3, "convolution kernel size of phase 2 and the decoder", min=1),
            Param("decoder", "any", ["resnet", "attn", "up"], f"the decoder blocks, a list among {', '.join(DECODER_BLOCKS)}",
                  parse=parse_decoder),
        ),
        model=True,
        doc="VAR: pyramid transformer (Φ_up, Attn, g per level), feature-map reconstruction, VQ-VAE decoder",
        estimate=lambda dims, params: (
            MIN_BLOCK_NODES * repeat_count(params["scales"]) * params["layers"] + MIN_DECODER_NODES * len(params["decoder"]), 0
        ),
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
