"""VAR as released: the inference circuit of ``autoregressive_infer_cfg`` (the package docstring
describes it step by step) for a parsed ``VarConfig``: class modulations, AdaLN blocks with the
key/value cache over scales, guidance, sampling, the residual quantiser and the VQ-VAE decoder."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tc0sim.ir.dag import WeightSource
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.domains import domain_input
from tc0sim.models.common import NamedWeights
from tc0sim.models.vae_decoder import vae_decoder
from tc0sim.models.var_release.config import MAX_SCALE_MUL, REF, VAE_PREFIX, VarConfig, phi_names, phi_tables
from tc0sim.ops.activations import clamp, gelu_tanh, silu, softmax
from tc0sim.ops.linear import conv2d_torch, linear
from tc0sim.ops.norms import l2_normalize, layer_norm
from tc0sim.ops.resize import area, bicubic
from tc0sim.ops.sampler import index_triangle, inverse_cdf_sample, official_sample


@dataclass
class _Block:
    """One block's class-dependent values (computed once): modulations [2, 1, C] and head scales [H]."""

    gamma1: Tensor
    gamma2: Tensor
    scale1: Tensor
    scale2: Tensor
    shift1: Tensor
    shift2: Tensor
    q_scale: Tensor | None
    """exp(min(s_h, ln 100)) per head (None without ``attn_l2_norm``)."""


def _split(b: Builder, mod: Tensor, parts: int) -> list[Tensor]:
    """[2B, parts, C] → ``parts`` tensors [2B, 1, C]."""
    return [b.slice(mod, 1, i, i + 1) for i in range(parts)]


def _modulations(b: Builder, w: NamedWeights, cfg: VarConfig, cond: Tensor) -> list[_Block]:
    c, one, rows = cfg.width, b.constant(1), cond.shape[0]
    with b.scope("adaln", REF):
        act = silu(b, cond)
        shared = b.reshape(w.linear(act, "shared_ada_lin.1", 6 * c), (rows, 6, c)) if cfg.shared_aln else None
        blocks = []
        for j in range(cfg.depth):
            if shared is not None:
                mod = b.add(shared, b.reshape(w(f"blocks.{j}.ada_gss", (1, 1, 6, c)), (1, 6, c)))
            else:
                mod = b.reshape(w.linear(act, f"blocks.{j}.ada_lin.1", 6 * c), (rows, 6, c))
            g1, g2, s1, s2, h1, h2 = _split(b, mod, 6)
            q_scale = None
            if cfg.attn_l2_norm:
                log_scale = b.reshape(w(f"blocks.{j}.attn.scale_mul_1H11", (1, cfg.heads, 1, 1)), (1, cfg.heads, 1, 1))
                q_scale = b.exp(b.min(log_scale, b.constant(MAX_SCALE_MUL)))
            blocks.append(_Block(g1, g2, b.add(s1, one), b.add(s2, one), h1, h2, q_scale))
        return blocks


def _modulate(b: Builder, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """LN(x)·(1 + s) + b (the 1 + s is precomputed)."""
    return b.add(b.mul(layer_norm(b, x), scale), shift)


def _heads(b: Builder, x: Tensor, heads: int) -> Tensor:
    """[2B, n, C] → [2B, H, n, C/H]."""
    two, n, c = x.shape
    return b.transpose(b.reshape(x, (two, n, heads, c // heads)), (0, 2, 1, 3))


def _attention(b: Builder, w: NamedWeights, cfg: VarConfig, x: Tensor, blk: _Block, cache: list[list[Tensor]]) -> Tensor:
    """Self-attention of one scale's tokens over the cached keys/values of every scale so far."""
    two, n, c = x.shape
    with b.scope("attention", REF):
        bias = b.concat([w("attn.q_bias", (c,)), b.broadcast(b.constant(0), (c,)), w("attn.v_bias", (c,))])
        qkv = linear(b, x, w("attn.mat_qkv.weight", (3 * c, c)), bias, name="mat_qkv")
        q, k, v = (_heads(b, b.slice(qkv, 2, i * c, (i + 1) * c), cfg.heads) for i in range(3))
        if blk.q_scale is None:  # the official slow_attn: query.mul(0.25 / √head_dim), keys as they are
            q = b.mul(q, b.constant(Fraction(0.25 / math.sqrt(c // cfg.heads))))
        else:
            q, k = b.mul(l2_normalize(b, q), blk.q_scale), l2_normalize(b, k)
        cache[0].append(k)
        cache[1].append(v)
        keys, values = b.concat(cache[0], axis=2), b.concat(cache[1], axis=2)  # [2B, H, L_k, hd]
        hd, seen = c // cfg.heads, keys.shape[2]
        logits = b.sum(b.mul(b.reshape(q, (two, cfg.heads, n, 1, hd)), b.reshape(keys, (two, cfg.heads, 1, seen, hd))), axis=4)
        weights = softmax(b, logits)
        mixed = b.sum(b.mul(b.reshape(weights, (two, cfg.heads, n, seen, 1)), b.reshape(values, (two, cfg.heads, 1, seen, hd))), axis=3)
        mixed = b.reshape(b.transpose(mixed, (0, 2, 1, 3)), (two, n, c))
        return w.linear(mixed, "attn.proj", c)


_BLOCK_FIELDS = tuple(_Block.__dataclass_fields__)


def _block_body(cfg: VarConfig) -> Callable[[Builder, dict[str, Tensor], WeightSource], dict[str, Tensor]]:
    """One AdaLN block as a shared body: x, the block's modulations and the cache in; x, k, v out."""

    def body(b: Builder, args: dict[str, Tensor], weight: WeightSource) -> dict[str, Tensor]:
        w = NamedWeights(b, weight)
        blk = _Block(*(args.get(f) for f in _BLOCK_FIELDS))
        seen = sum(1 for name in args if name.startswith("k"))
        cache = [[args[f"k{i}"] for i in range(seen)], [args[f"v{i}"] for i in range(seen)]]
        x = args["x"]
        x = b.add(x, b.mul(_attention(b, w, cfg, _modulate(b, x, blk.scale1, blk.shift1), blk, cache), blk.gamma1))
        with b.scope("ffn", REF):
            h = w.linear(_modulate(b, x, blk.scale2, blk.shift2), "ffn.fc1", cfg.mlp_hidden)
            h = w.linear(gelu_tanh(b, h), "ffn.fc2", cfg.width)
        return {"x": b.add(x, b.mul(h, blk.gamma2)), "k": cache[0][-1], "v": cache[1][-1]}

    return body


def _block(b: Builder, w: NamedWeights, cfg: VarConfig, x: Tensor, j: int, blk: _Block, cache: list[list[Tensor]]) -> Tensor:
    """Block j on one scale's tokens (a shared body: the same circuit for every block of a scale)."""
    args = {"x": x, **{f: getattr(blk, f) for f in _BLOCK_FIELDS if getattr(blk, f) is not None}}
    args.update({f"k{i}": t for i, t in enumerate(cache[0])})
    args.update({f"v{i}": t for i, t in enumerate(cache[1])})
    with b.scope("adaln_block", f"block {j}; {REF}"):
        out = b.call("var_block", _block_body(cfg), args, w.under(f"blocks.{j}."))
    cache[0].append(out["k"])
    cache[1].append(out["v"])
    return out["x"]


def _conditioning(b: Builder, w: NamedWeights, cfg: VarConfig) -> Tensor:
    """``class_emb`` rows [2B, C]: the B labels, then B null rows (``label_B``, then the null class).

    An integer label is a gather of its row (a negative one: the null row); with ``label: null`` the
    classes are the input ``class_onehot`` (one-hot rows, as the official code draws them)."""
    c, n, batch = cfg.width, cfg.classes, cfg.batch
    class_emb = w("class_emb.weight", (n + 1, c))
    with b.scope("conditioning", REF):
        if cfg.label is None:
            onehot = domain_input(b, "class_onehot", (n,) if batch == 1 else (batch, n), "onehot")
            cond = linear(b, b.reshape(onehot, (batch, n)), b.transpose(b.slice(class_emb, 0, 0, n), (1, 0)), name="class_emb")
        else:
            cond = b.gather(class_emb, np.full(batch, n if cfg.label < 0 else cfg.label), axis=0)
        return b.concat([cond, b.gather(class_emb, np.full(batch, n), axis=0)], axis=0)


class _Sampler:
    """The sampler's inputs and one scale's draw (``sampler: official`` or ``inverse_cdf``)."""

    def __init__(self, b: Builder, cfg: VarConfig) -> None:
        self.b, self.cfg, rows, vocab = b, cfg, cfg.batch * cfg.tokens, cfg.codebook
        if cfg.sampler == "official":
            self.noise = domain_input(b, "exponentials", (rows, vocab), "exponential")
            self.gumbels = domain_input(b, "gumbels", (rows, vocab), "gumbel") if cfg.more_smooth else None
        else:
            self.noise = domain_input(b, "uniform", (rows,), "unit")
            self.tri = index_triangle(b, vocab)

    def __call__(self, guided: Tensor, si: int, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Codebook weights [B·pn², V] and indices [B·pn²] of scale ``si`` (rows ``start:stop`` of the inputs)."""
        b, cfg = self.b, self.cfg
        if cfg.sampler == "inverse_cdf":
            return inverse_cdf_sample(b, guided, b.slice(self.noise, 0, start, stop), cfg.top_k, cfg.top_p, self.tri)
        gumbels = None if self.gumbels is None else b.slice(self.gumbels, 0, start, stop)
        return official_sample(b, guided, b.slice(self.noise, 0, start, stop), cfg.top_k, cfg.top_p, gumbels=gumbels,
                               scale_index=si, scales=len(cfg.scales))


def _phi(b: Builder, w: NamedWeights, cfg: VarConfig, h: Tensor, name: str) -> Tensor:
    """``Φ(h) = (1 − |q|)·h + |q|·Conv3×3(h)``, or h when Φ is the identity."""
    if cfg.phi_identity:
        return h
    ratio, cv = abs(cfg.quant_resi), cfg.vae_channels
    conv = conv2d_torch(b, h, w(f"{name}.weight", (cv, cv, 3, 3)), w(f"{name}.bias", (cv,)), name="phi")
    return b.add(b.mul(h, b.constant(Fraction(1 - ratio))), b.mul(conv, b.constant(Fraction(ratio))))


def build_circuit(b: Builder, cfg: VarConfig) -> dict[str, Tensor]:
    """The outputs (image, indices, f_hat) of the released model's inference under ``cfg``."""
    c, vocab, cv, big, batch = cfg.width, cfg.codebook, cfg.vae_channels, cfg.scales[-1], cfg.batch
    starts = np.cumsum([0] + [pn * pn for pn in cfg.scales]).tolist()
    first = cfg.scales[0] ** 2
    w = NamedWeights(b)
    with b.scope("var_release", REF):
        cond = _conditioning(b, w, cfg)
        sampler = _Sampler(b, cfg)
        with b.scope("conditioning", REF):
            levels = np.repeat(np.arange(len(cfg.scales)), [pn * pn for pn in cfg.scales])
            lvl_pos = b.add(b.gather(w("lvl_embed.weight", (len(cfg.scales), c)), levels, axis=0),
                            b.reshape(w("pos_1LC", (1, cfg.tokens, c)), (cfg.tokens, c)))
            x = b.add(b.add(b.reshape(cond, (2 * batch, 1, c)), b.reshape(w("pos_start", (1, first, c)), (1, first, c))),
                      b.slice(lvl_pos, 0, 0, first))
        blocks = _modulations(b, w, cfg, cond)
        with b.scope("head_adaln", REF):
            head_mod = b.reshape(w.linear(silu(b, cond), "head_nm.ada_lin.1", 2 * c), (2 * batch, 2, c))
            head_scale, head_shift = _split(b, head_mod, 2)
            head_scale = b.add(head_scale, b.constant(1))
        codebook = b.transpose(w(f"{VAE_PREFIX}quantize.embedding.weight", (vocab, cv)), (1, 0))
        phis = phi_names(cfg)
        for name in dict.fromkeys(phi_tables(cfg)):  # every Φ of the table is a weight, read or not
            w(f"{name}.weight", (cv, cv, 3, 3)), w(f"{name}.bias", (cv,))
        caches: list[list[list[Tensor]]] = [[[], []] for _ in range(cfg.depth)]
        f_hat: list[Tensor | None] = [None] * batch
        indices = []
        last = len(cfg.scales) - 1
        for si, pn in enumerate(cfg.scales):
            n = pn * pn
            with b.scope(f"scale{si + 1}", REF):
                for j in range(cfg.depth):
                    x = _block(b, w, cfg, x, j, blocks[j], caches[j])
                with b.scope("head", REF):
                    logits = w.linear(_modulate(b, x, head_scale, head_shift), "head", vocab)
                with b.scope("guidance", REF):
                    t = cfg.cfg * (si / last)
                    guided = b.sub(b.mul(b.constant(Fraction(1 + t)), b.reshape(b.slice(logits, 0, 0, batch), (batch * n, vocab))),
                                   b.mul(b.constant(Fraction(t)), b.reshape(b.slice(logits, 0, batch, 2 * batch), (batch * n, vocab))))
                weights, index = sampler(guided, si, batch * starts[si], batch * starts[si + 1])
                indices.append(b.reshape(index, (batch, n)))
                with b.scope("quantiser", REF):
                    rows = linear(b, weights, codebook, name="codebook")
                    nxt = None if si == last else cfg.scales[si + 1]
                    tokens = []
                    for i in range(batch):
                        h = b.reshape(b.slice(rows, 0, i * n, (i + 1) * n), (pn, pn, cv))
                        h = _phi(b, w, cfg, h if si == last else bicubic(b, h, big, big), phis[si])
                        f_hat[i] = h if f_hat[i] is None else b.add(f_hat[i], h)
                        if nxt is not None:
                            tokens.append(b.reshape(area(b, f_hat[i], nxt, nxt), (nxt * nxt, cv)))
                if nxt is None:
                    break
                with b.scope("word_embed", REF):
                    x = b.reshape(w.linear(b.concat(tokens, axis=0), "word_embed", c), (batch, nxt * nxt, c))
                    x = b.add(x, b.slice(lvl_pos, 0, starts[si + 1], starts[si + 2]))
                    x = b.concat([x, x], axis=0)  # the CFG batch: the same tokens in both halves
        images = []
        for i in range(batch):
            image = vae_decoder(b, f_hat[i], cfg.decoder, source=w.under(VAE_PREFIX))
            with b.scope("output", REF):
                images.append(b.mul(b.add(clamp(b, image, -1, 1), b.constant(1)), b.constant(Fraction(1, 2))))
    tokens_out = b.concat(indices, axis=1)
    if batch == 1:  # one image: no batch axis
        return {"image": images[0], "indices": b.reshape(tokens_out, (cfg.tokens,)), "f_hat": f_hat[0]}
    stack = lambda ts: b.concat([b.reshape(t, (1, *t.shape)) for t in ts], axis=0)  # noqa: E731
    return {"image": stack(images), "indices": tokens_out, "f_hat": stack(f_hat)}
