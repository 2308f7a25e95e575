"""FlowAR as released: the sampling circuit for a parsed ``FlowARReleaseConfig`` (the package
docstring describes it): class embedding, the AR transformer with its KV cache, the flow head's Euler
steps with guidance, and the VAE decoder."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from fractions import Fraction
from typing import Any

import gmpy2
import numpy as np

from tc0sim.ir.dag import WeightSource
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.domains import domain_input
from tc0sim.models.common import NamedWeights
from tc0sim.models.flowar_release.config import (HEAD_MLP_RATIO, HEAD_PREFIX, NULL_CLASS, REF, TIME_FEATURES,
                                                VAE_PREFIX, FlowARReleaseConfig)
from tc0sim.models.flowar_release.schedule import guidance_scale, guided, time_features, time_index, time_points
from tc0sim.models.vae_decoder import vae_decoder
from tc0sim.ops.activations import silu
from tc0sim.ops.constants import real
from tc0sim.ops.glu import glu
from tc0sim.ops.linear import linear
from tc0sim.ops.mha import merge_heads, modulate, sdpa, sdpa_aattc, split_heads
from tc0sim.ops.resize import area, bicubic
from tc0sim.ops.rmsnorm import rms_norm
from tc0sim.ops.rope import rope, rope_tables

_MODS = ("gamma1", "gamma2", "scale1", "scale2", "shift1", "shift2")


class _Circuit:
    """Builds the circuit; caches the values shared by several scales or steps."""

    def __init__(self, b: Builder, cfg: FlowARReleaseConfig) -> None:
        self.b, self.cfg, self.w = b, cfg, NamedWeights(b)
        self.bodies: dict[int, _Circuit] = {}
        self.tables: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
        self.time_embeds: dict[int, dict[str, Tensor]] = {}
        self.inv_sqrt: dict[int, Fraction] = {}

    # shared pieces
    def rope_tables(self, head_dim: int, side: int) -> tuple[Tensor, Tensor]:
        key = (head_dim, side)
        if key not in self.tables:
            shape, seq = (side * side, head_dim), self.cfg.rope_seq_len
            self.tables[key] = (self.b.lazy_constant(shape, lambda: rope_tables(head_dim, side, seq)[0], name=f"rope_cos_{head_dim}_{side}"),
                                self.b.lazy_constant(shape, lambda: rope_tables(head_dim, side, seq)[1], name=f"rope_sin_{head_dim}_{side}"))
        return self.tables[key]

    def scale(self, head_dim: int) -> Fraction:
        if head_dim not in self.inv_sqrt:
            self.inv_sqrt[head_dim] = real(lambda x: 1 / gmpy2.sqrt(x), head_dim)
        return self.inv_sqrt[head_dim]

    def attention(self, q: Tensor, k: Tensor, v: Tensor, heads: int, side: int) -> Tensor:
        """Heads, RoPE on q and k, sdpa, heads merged ([..., n, C] in and out); k/v may be pre-split."""
        b = self.b
        head_dim = q.shape[-1] // heads
        cos, sin = self.rope_tables(head_dim, side)
        qh = rope(b, split_heads(b, q, heads), cos, sin)
        if self.cfg.attention == "aattc":
            return merge_heads(b, sdpa_aattc(b, qh, k, v, self.scale(head_dim), self.cfg.aattc_degree))
        return merge_heads(b, sdpa(b, qh, k, v, self.scale(head_dim)))

    def mods(self, x: Tensor, count: int) -> list[Tensor]:
        """[..., count·C] → count tensors [..., C] (the official ``view(..., count, C).unbind``)."""
        c = x.shape[-1] // count
        return [self.b.slice(x, x.ndim - 1, i * c, (i + 1) * c) for i in range(count)]

    def shared(self, key: Hashable, body: Callable[[_Circuit, NamedWeights, dict[str, Tensor]], dict[str, Tensor]],
               args: dict[str, Tensor], weights: WeightSource) -> dict[str, Tensor]:
        """``body`` as a shared sub-circuit (``Builder.call``) reading ``weights``; in the body,
        ``self`` is the circuit of the body's own builder (its constants are its own)."""

        def build(b: Builder, inner: dict[str, Tensor], weight: WeightSource) -> dict[str, Tensor]:
            circuit = self if b is self.b else self.bodies.get(id(b))
            if circuit is None:
                circuit = self.bodies[id(b)] = _Circuit(b, self.cfg)
            return body(circuit, NamedWeights(b, weight), inner)

        return self.b.call(key, build, args, weights)

    # AR transformer
    def ar_block(self, x: Tensor, name: str, mods: list[Tensor], cache: list[list[Tensor]], side: int) -> Tensor:
        """One AR block (a shared body per scale): x, its six AdaLN vectors and the cache in; x, k, v out."""
        args = {"x": x, **dict(zip(_MODS, mods))}
        args.update({f"k{i}": t for i, t in enumerate(cache[0])})
        args.update({f"v{i}": t for i, t in enumerate(cache[1])})
        with self.b.scope("block", REF):
            out = self.shared(("flowar_ar_block", side), lambda c, w, a: c.ar_block_body(w, a, side), args, self.w.under(f"{name}."))
        cache[0].append(out["k"])
        cache[1].append(out["v"])
        return out["x"]

    def ar_block_body(self, w: NamedWeights, args: dict[str, Tensor], side: int) -> dict[str, Tensor]:
        b, cfg = self.b, self.cfg
        x = args["x"]
        gamma1, gamma2, scale1, scale2, shift1, shift2 = (args[m] for m in _MODS)
        seen = sum(1 for name in args if name.startswith("k"))
        h = modulate(b, rms_norm(b, x), scale1, shift1)
        qkv = w.linear(h, "attn.qkv", 3 * cfg.width)
        q, k, v = self.mods(qkv, 3)
        head_dim = cfg.width // cfg.heads
        cos, sin = self.rope_tables(head_dim, side)
        k = rope(b, split_heads(b, k, cfg.heads), cos, sin)
        v = split_heads(b, v, cfg.heads)
        keys = b.concat([args[f"k{i}"] for i in range(seen)] + [k], axis=2)
        values = b.concat([args[f"v{i}"] for i in range(seen)] + [v], axis=2)
        q = b.broadcast(q, keys.shape[:1] + q.shape[1:])
        attn = w.linear(self.attention(q, keys, values, cfg.heads, side), "attn.proj", cfg.width)
        x = b.add(x, b.mul(attn, gamma1))
        h = modulate(b, rms_norm(b, x), scale2, shift2)
        mlp = glu(b, h, cfg.hidden(cfg.width), lambda t, n, o: w.linear(t, n, o), name="mlp")
        return {"x": b.add(x, b.mul(mlp, gamma2)), "k": k, "v": v}

    def ar_modulations(self, cond: Tensor, stack: str) -> list[list[Tensor]]:
        """Every block's six AdaLN vectors [B, 1, E] from SiLU(class embedding) (the same at every scale)."""
        b, w, cfg = self.b, self.w, self.cfg
        act = silu(b, cond)
        out = []
        for j in range(cfg.blocks):
            with b.scope(f"{stack}{j}_adaln", REF):
                out.append(self.mods(w.linear(act, f"{stack}.{j}.ada_lin.1", 6 * cfg.width), 6))
        return out

    # flow head
    def time_conditioning(self, index: int) -> dict[str, Tensor]:
        """t_emb [1, 1, w] of time index n and, for Block_v2, every block's gamma1, scale1, shift1
        from SiLU(t_emb) (a shared body on the constant time features; computed once per n)."""
        if index not in self.time_embeds:
            features = self.b.lazy_constant((1, 1, TIME_FEATURES), lambda: np.array(time_features(index), dtype=object).reshape(1, 1, TIME_FEATURES))
            self.time_embeds[index] = self.shared("flowar_time", lambda c, w, a: c.time_body(w, a), {"features": features},
                                                  self.w.under(HEAD_PREFIX))
        return self.time_embeds[index]

    def time_body(self, w: NamedWeights, args: dict[str, Tensor]) -> dict[str, Tensor]:
        b, wid = self.b, self.cfg.head_width
        with b.scope("time_embed", REF):
            hidden = silu(b, w.linear(args["features"], "time_embed.mlp.0", wid))
            out = {"t_emb": w.linear(hidden, "time_embed.mlp.2", wid)}
        if self.cfg.cross:
            with b.scope("time_adaln", REF):
                for j in range(self.cfg.head_blocks):
                    lin = w.linear(silu(b, out["t_emb"]), f"res_blocks.{j}.ada_lin_attn", 3 * wid)
                    out.update({f"{m}{j}": t for m, t in zip(("gamma1", "scale1", "shift1"), self.mods(lin, 3))})
        return out

    def velocity(self, x: Tensor, index: int, cond: dict[str, Any], side: int) -> Tensor:
        """The flow head on x [B, N, 16] at time index n with the scale's conditioning tensors (a
        shared body per scale; the time embedding and Block_v2's time modulations are arguments)."""
        cfg = self.cfg
        args = {"x": x, "c": cond["c"], **self.time_conditioning(index)}
        if cfg.cross:
            for j in range(cfg.head_blocks):
                args[f"cross_k{j}"], args[f"cross_v{j}"] = cond["kv"][j]
        with self.b.scope("velocity", REF):
            return self.shared(("flowar_velocity", side), lambda c, w, a: c.velocity_body(w, a, side), args, self.w.under(HEAD_PREFIX))["v"]

    def velocity_body(self, w: NamedWeights, args: dict[str, Tensor], side: int) -> dict[str, Tensor]:
        b, cfg = self.b, self.cfg
        wid = cfg.head_width
        act = silu(b, b.add(args["c"], args["t_emb"]))
        h = w.linear(args["x"], "input_proj", wid)
        for j in range(cfg.head_blocks):
            name = f"res_blocks.{j}"
            with b.scope("head_block", REF):
                if cfg.cross:
                    gamma1, scale1, shift1 = (args[f"{m}{j}"] for m in ("gamma1", "scale1", "shift1"))
                    gamma2, scale2, shift2 = self.mods(w.linear(act, f"{name}.ada_lin_mlp", 3 * wid), 3)
                else:
                    gamma1, gamma2, scale1, scale2, shift1, shift2 = self.mods(w.linear(act, f"{name}.ada_lin", 6 * wid), 6)
                block = {"h": h, **dict(zip(_MODS, (gamma1, gamma2, scale1, scale2, shift1, shift2)))}
                if cfg.cross:
                    block["cross_k"], block["cross_v"] = args[f"cross_k{j}"], args[f"cross_v{j}"]
                h = self.shared(("flowar_head_block", side), lambda c, bw, a: c.head_block_body(bw, a, side), block, w.under(f"{name}."))["h"]
        shift, scale = self.mods(w.linear(act, "final_layer.adaLN_modulation.1", 2 * wid), 2)
        out = modulate(b, rms_norm(b, h), scale, shift)
        return {"v": w.linear(out, "final_layer.linear", cfg.latent_channels)}

    def head_block_body(self, w: NamedWeights, args: dict[str, Tensor], side: int) -> dict[str, Tensor]:
        """One flow-head block (Block_v1, or Block_v2 with cross-attention) on h, given its AdaLN vectors."""
        b, cfg = self.b, self.cfg
        wid = cfg.head_width
        h = args["h"]
        gamma1, gamma2, scale1, scale2, shift1, shift2 = (args[m] for m in _MODS)
        normed = modulate(b, rms_norm(b, h), scale1, shift1)
        qkv = w.linear(normed, "attn.qkv", 3 * wid, bias=False)
        q, k, v = self.mods(qkv, 3)
        cos, sin = self.rope_tables(wid // cfg.head_heads, side)
        keys = rope(b, split_heads(b, k, cfg.head_heads), cos, sin)
        attn = self.attention(q, keys, split_heads(b, v, cfg.head_heads), cfg.head_heads, side)
        h = b.add(h, b.mul(w.linear(attn, "attn.proj", wid), gamma1))
        if cfg.cross:
            query = w.linear(rms_norm(b, h, w("norm2_1.weight", (wid,))), "crossattn.q", wid, bias=False)
            cross = self.attention(query, args["cross_k"], args["cross_v"], cfg.head_heads, side)
            h = b.add(h, w.linear(cross, "crossattn.proj", wid))
        normed = modulate(b, rms_norm(b, h), scale2, shift2)
        mlp = glu(b, normed, cfg.hidden(wid, HEAD_MLP_RATIO), lambda t, n, o: w.linear(t, n, o), name="mlp")
        return {"h": b.add(h, b.mul(mlp, gamma2))}

    def head_conditioning(self, z: Tensor, side: int) -> dict[str, Any]:
        """c = cond_embed(z) and, for Block_v2, each block's cross-attention keys (RoPE'd) and values."""
        b, w, cfg = self.b, self.w, self.cfg
        wid = cfg.head_width
        with b.scope("head_conditioning", REF):
            out: dict[str, Any] = {"c": w.linear(z, f"{HEAD_PREFIX}cond_embed", wid), "kv": []}
            if cfg.cross:
                cos, sin = self.rope_tables(wid // cfg.head_heads, side)
                for j in range(cfg.head_blocks):
                    name = f"{HEAD_PREFIX}res_blocks.{j}"
                    normed = rms_norm(b, z, w(f"{name}.norm2_2.weight", (cfg.width,)))
                    k, v = self.mods(w.linear(normed, f"{name}.crossattn.kv", 2 * wid, bias=False), 2)
                    out["kv"].append((rope(b, split_heads(b, k, cfg.head_heads), cos, sin), split_heads(b, v, cfg.head_heads)))
        return out

    def twice(self, x: Tensor) -> Tensor:
        """The CFG batch of x [B, …]: [2B, …], the same rows in both halves (the official ``repeat(2, 1, 1)``)."""
        return self.b.broadcast(x, (2,) + x.shape[1:]) if x.shape[0] == 1 else self.b.concat([x, x], axis=0)

    def sample(self, z: Tensor, noise: Tensor, k: int) -> Tensor:
        """The Euler sampler of scale index k on noise [B, N, 16]: the conditional samples [B, N, 16]."""
        b, cfg, batch = self.b, self.cfg, self.cfg.batch
        side = cfg.scales[k]
        both = self.head_conditioning(z, side)
        first = {"c": b.slice(both["c"], 0, 0, batch), "kv": [tuple(b.slice(t, 0, 0, batch) for t in kv) for kv in both["kv"]]}
        points = time_points(cfg.steps)
        g = guidance_scale(cfg.cfg, k, len(cfg.scales))
        x = noise
        for i, (t, t_next) in enumerate(zip(points[:-1], points[1:])):
            with b.scope(f"step{i + 1}", REF):
                index = time_index(t)
                if z.shape[0] == 2 * batch and guided(cfg.cfg, k, len(cfg.scales), t, cfg.guidance):
                    v = self.velocity(self.twice(x), index, both, side)
                    v_cond, v_uncond = b.slice(v, 0, 0, batch), b.slice(v, 0, batch, 2 * batch)
                    v = b.add(v_uncond, b.mul(b.constant(g), b.sub(v_cond, v_uncond)))
                else:
                    v = self.velocity(x, index, first, side)
                x = b.add(x, b.mul(b.constant(t_next - t), v))
        return x


def noise_name(k: int) -> str:
    """The input holding the conditional flow noise of scale index k (0-based): ``noise.{k + 1}``."""
    return f"noise.{k + 1}"


def build_circuit(b: Builder, cfg: FlowARReleaseConfig) -> dict[str, Tensor]:
    """The outputs (out, latent, sample.k) of the released model's sampling under ``cfg``."""
    fb = _Circuit(b, cfg)
    w, e, ch = fb.w, cfg.width, cfg.latent_channels
    starts = np.cumsum([0] + [s * s for s in cfg.scales]).tolist()
    two, batch = 2 if cfg.cfg != 1 else 1, cfg.batch
    lead = () if batch == 1 else (batch,)  # one image: no batch axis
    outputs: dict[str, Tensor] = {}
    with b.scope("flowar_release", REF):
        table = w("class_emb.weight", (NULL_CLASS + 1, e))
        with b.scope("class_embedding", REF):
            if cfg.label is None:
                label = domain_input(b, "class_onehot", lead + (cfg.classes,), "onehot")
                cond = linear(b, label, b.transpose(b.slice(table, 0, 0, cfg.classes), (1, 0)), name="class_emb")
            else:
                cond = b.gather(table, np.full(batch, NULL_CLASS if cfg.label < 0 else cfg.label), axis=0)
            rows = [b.reshape(cond, (batch, e))]
            if two == 2:
                rows.append(b.broadcast(b.slice(table, 0, NULL_CLASS, NULL_CLASS + 1), (batch, e)))
            cond = b.reshape(b.concat(rows, axis=0), (two * batch, 1, e))
        enc_mods, dec_mods = fb.ar_modulations(cond, "encoder_blocks"), fb.ar_modulations(cond, "decoder_blocks")
        positions = {n: w(f"{n}_pos_embed_learned", (1, cfg.tokens, e)) for n in ("encoder", "decoder", "diffusion")}
        caches = {stack: [[[], []] for _ in range(cfg.blocks)] for stack in ("encoder", "decoder")}
        x = cond
        sample = None
        for k, side in enumerate(cfg.scales):
            with b.scope(f"scale{k + 1}", REF):
                if k > 0:
                    with b.scope("next_scale_input", REF):
                        big, rows = cfg.upsample_side, []
                        for i in range(batch):
                            row = sample if batch == 1 else b.slice(sample, 0, i, i + 1)
                            m = bicubic(b, b.reshape(row, (cfg.scales[k - 1],) * 2 + (ch,)), big, big)
                            rows.append(b.reshape(area(b, m, side, side), (1, side * side, ch)))
                        x = w.linear(b.concat(rows, axis=0) if batch > 1 else rows[0], "z_proj", e)
                        x = fb.twice(x) if batch > 1 and two == 2 else x
                pos = {n: b.slice(t, 1, starts[k], starts[k + 1]) for n, t in positions.items()}
                with b.scope("encoder", REF):
                    h = rms_norm(b, b.add(x, pos["encoder"]), w("z_proj_ln.weight", (e,)))
                    for j in range(cfg.blocks):
                        h = fb.ar_block(h, f"encoder_blocks.{j}", enc_mods[j], caches["encoder"][j], side)
                    h = rms_norm(b, h, w("encoder_norm.weight", (e,)))
                with b.scope("decoder", REF):
                    h = b.add(w.linear(h, "decoder_embed", e), pos["decoder"])
                    for j in range(cfg.blocks):
                        h = fb.ar_block(h, f"decoder_blocks.{j}", dec_mods[j], caches["decoder"][j], side)
                    z = b.add(rms_norm(b, h, w("decoder_norm.weight", (e,))), pos["diffusion"])
                with b.scope("flow_head", REF):
                    noise = domain_input(b, noise_name(k), (batch, side * side, ch), "noise")
                    sample = fb.sample(z, noise, k)
                outputs[f"sample.{k + 1}"] = b.reshape(sample, lead + (side, side, ch))
        latent = outputs[f"sample.{len(cfg.scales)}"]
        image = None
        if cfg.vae is not None:
            with b.scope("vae", REF):
                if batch == 1:
                    image = vae_decoder(b, b.div(latent, b.constant(cfg.vae_scale)), cfg.vae, prefix=VAE_PREFIX)
                else:  # one decoder per image, one set of weights
                    images = [vae_decoder(b, b.div(b.reshape(b.slice(latent, 0, i, i + 1), latent.shape[1:]), b.constant(cfg.vae_scale)),
                                          cfg.vae, source=w.under(VAE_PREFIX)) for i in range(batch)]
                    image = b.concat([b.reshape(t, (1, *t.shape)) for t in images], axis=0)
    return {"out": latent if image is None else image, "latent": latent, **outputs}
