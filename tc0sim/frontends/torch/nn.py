"""Lowering rules of ATen's matrix, convolution, normalisation, attention and lookup ops (docs/torch.md).

Where a hand-lowered operator computes the same thing in the same order it is reused (``mm`` →
``ops.matmul``, ``addmm`` with a row bias → ``ops.linear``, layer norm → ``ops.norms.layer_norm``,
unmasked attention → ``ops.mha.sdpa``), so traced and hand-built circuits have the same depth.
Products are one layer of ⊗ gates and every dot product one ⊕ gate (the bias as one more term).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tc0sim.errors import GraphError
from tc0sim.frontends.torch.pointwise import _maskable, add
from tc0sim.frontends.torch.reduce import tree
from tc0sim.frontends.torch.shape import static_move
from tc0sim.frontends.torch.values import Lazy, Lowering, Masked
from tc0sim.ir.graph import Tensor
from tc0sim.ops import mha, norms
from tc0sim.ops.activations import scalar
from tc0sim.ops.linear import linear
from tc0sim.ops.matmul import matmul

aten = torch.ops.aten


def _scale(lw: Lowering, t: Tensor, factor: Any) -> Tensor:
    return t if factor == 1 else lw.b.mul(t, scalar(lw.b, factor, t))


def mm(lw: Lowering, x: Any, y: Any) -> Tensor:
    """X[n, k]·Y[k, m] (``ops.matmul``): d_std + d_sum."""
    return matmul(lw.b, lw.tensor(x), lw.tensor(y))


def bmm(lw: Lowering, x: Any, y: Any) -> Tensor:
    """X[B, n, k]·Y[B, k, m]: products, one ⊕ of fan-in k per output."""
    a, c = lw.tensor(x), lw.tensor(y)
    (batch, n, k), m = a.shape, c.shape[2]
    products = lw.b.mul(lw.b.reshape(a, (batch, n, k, 1)), lw.b.reshape(c, (batch, 1, k, m)))
    return lw.b.sum(products, axis=2)


def addmm(lw: Lowering, bias: Any, x: Any, y: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta·bias + alpha·(X·Y): with beta = alpha = 1 one ⊕ per output with the bias as a term
    (``ops.linear`` for a row bias, as ``nn.Linear`` exports)."""
    a, w_t = _scale(lw, lw.tensor(x), alpha), lw.tensor(y)
    c = _scale(lw, lw.tensor(bias), beta)
    n, m = a.shape[0], w_t.shape[1]
    weight = lw.b.transpose(w_t, (1, 0))
    if c.shape == (m,):
        return linear(lw.b, a, weight, c)
    products = lw.b.mul(lw.b.reshape(a, (n, 1, a.shape[1])), lw.b.reshape(weight, (1, m, a.shape[1])))
    terms = lw.b.concat([products, lw.b.reshape(lw.b.broadcast(c, (n, m)), (n, m, 1))], axis=2)
    return lw.b.sum(terms, axis=2)


def windows(lw: Lowering, x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
            dilation: Sequence[int]) -> Tensor:
    """X[N, C, H, W] → its zero-padded windows [N, C, kh, Ho, kw, Wo] (two gathers: wiring)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    padded = lw.b.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rows = np.arange(kh)[:, None] * dh + np.arange(ho)[None, :] * sh
    cols = np.arange(kw)[:, None] * dw + np.arange(wo)[None, :] * sw
    return lw.b.gather(lw.b.gather(padded, rows, axis=2), cols, axis=4)


def _pair(v: Any, n: int, fill: int) -> list[int]:
    v = [int(a) for a in (v if isinstance(v, (list, tuple)) else [v])] or [fill]
    return v * n if len(v) == 1 else v


def convolution(lw: Lowering, x: Any, weight: Any, bias: Any, stride: Sequence[int], padding: Sequence[int],
                dilation: Sequence[int], transposed: bool, output_padding: Sequence[int], groups: int) -> Tensor:
    """1-D/2-D convolution (stride, zero padding, dilation, groups; transposed through ``_as_direct``):
    Y = ⊕(window · K, b), one ⊕ per output."""
    t, w = lw.tensor(x), lw.tensor(weight)
    if t.ndim not in (3, 4):
        raise GraphError(f"{lw.where()}: only 1-D and 2-D convolutions have a lowering")
    one_d = t.ndim == 3
    if one_d:  # a 1-D convolution is a 2-D one of height 1
        t, w = lw.b.reshape(t, t.shape[:2] + (1,) + t.shape[2:]), lw.b.reshape(w, w.shape[:2] + (1,) + w.shape[2:])
        stride, padding, dilation, output_padding = [1, *stride], [0, *padding], [1, *dilation], [0, *output_padding]
    if transposed:
        t, w = _as_direct(lw, t, w, _pair(stride, 2, 1), _pair(padding, 2, 0), _pair(dilation, 2, 1),
                          _pair(output_padding, 2, 0), groups)
        stride, padding = (1, 1), (0, 0)
    out_ch, per_group, kh, kw = w.shape
    win = windows(lw, t, (kh, kw), _pair(stride, 2, 1), _pair(padding, 2, 0), _pair(dilation, 2, 1))
    n, ho, wo, k = t.shape[0], win.shape[3], win.shape[5], per_group * kh * kw
    patches = lw.b.reshape(lw.b.transpose(win, (0, 3, 5, 1, 2, 4)), (n, ho, wo, groups, 1, k))
    kernel = lw.b.reshape(w, (groups, out_ch // groups, k))
    terms = lw.b.reshape(lw.b.mul(patches, kernel), (n, ho, wo, out_ch, k))
    if bias is not None:
        column = lw.b.broadcast(lw.b.reshape(lw.tensor(bias), (out_ch, 1)), (n, ho, wo, out_ch, 1))
        terms = lw.b.concat([terms, column], axis=4)
    y = lw.b.transpose(lw.b.sum(terms, axis=4), (0, 3, 1, 2))
    return lw.b.reshape(y, (n, out_ch, wo)) if one_d else y


def _as_direct(lw: Lowering, t: Tensor, w: Tensor, stride: Sequence[int], padding: Sequence[int],
               dilation: Sequence[int], output_padding: Sequence[int], groups: int) -> tuple[Tensor, Tensor]:
    """A transposed convolution as a direct one: s − 1 zeros between input elements, d(k − 1) − p
    zeros around (+ output padding after; negative widths slice), the kernel's in/out channels
    swapped per group and its taps reversed. The added terms are exact zeros of the same ⊕."""
    for axis, (s, p, d, extra) in enumerate(zip(stride, padding, dilation, output_padding), start=2):
        size, k = t.shape[axis], w.shape[axis]
        spread = np.arange((size - 1) * s + 1)
        t = lw.b.gather(lw.b.pad(t, [(0, 1) if a == axis else (0, 0) for a in range(4)]),
                        np.where(spread % s == 0, spread // s, size), axis=axis)
        before, after = d * (k - 1) - p, d * (k - 1) - p + extra
        t = lw.b.pad(t, [(max(before, 0), max(after, 0)) if a == axis else (0, 0) for a in range(4)])
        t = lw.b.slice(t, axis, max(-before, 0), t.shape[axis] - max(-after, 0))
    cin, per_out, kh, kw = w.shape
    w = lw.b.transpose(lw.b.reshape(w, (groups, cin // groups, per_out, kh, kw)), (0, 2, 1, 3, 4))
    w = lw.b.reshape(w, (groups * per_out, cin // groups, kh, kw))
    w = lw.b.gather(lw.b.gather(w, np.arange(kh)[::-1].copy(), axis=2), np.arange(kw)[::-1].copy(), axis=3)
    return t, w


def avg_pool2d(lw: Lowering, x: Any, kernel_size: Sequence[int], stride: Sequence[int] = (), padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """⊕ of each window ÷ its count (kh·kw, or the pixels inside the image without count_include_pad)."""
    t = lw.tensor(x)
    batched = t if t.ndim == 4 else lw.b.reshape(t, (1,) + t.shape)
    kernel = _pair(kernel_size, 2, 1)
    stride = _pair(stride, 2, 0) if stride else kernel
    pad = _pair(padding, 2, 0)
    win = windows(lw, batched, kernel, stride, pad, (1, 1))
    if ceil_mode and any((d + 2 * p - k) % s for d, p, k, s in zip(batched.shape[2:], pad, kernel, stride)):
        raise GraphError(f"{lw.where()}: average pooling with ceil_mode that adds a partial window has no lowering")
    total = lw.b.sum(win, axis=(2, 4))  # [N, C, Ho, Wo]
    if divisor_override:
        count: Any = np.full((1, 1, 1, 1), divisor_override)
    elif count_include_pad or not any(pad):
        count = np.full((1, 1, 1, 1), kernel[0] * kernel[1])
    else:
        inside = np.pad(np.ones(batched.shape[2:]), [(p, p) for p in pad])
        rows = np.arange(kernel[0])[:, None] + np.arange(total.shape[2])[None, :] * stride[0]
        cols = np.arange(kernel[1])[:, None] + np.arange(total.shape[3])[None, :] * stride[1]
        count = inside[rows][:, :, cols].sum(axis=(0, 2))[None, None]
    y = lw.b.div(total, lw.constant(count))
    return y if t.ndim == 4 else lw.b.reshape(y, y.shape[1:])


def _adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive windows [⌊i·size/out⌋, ⌈(i+1)·size/out⌉) as [k, out] indices (size = a zero) and counts."""
    start = np.arange(out) * size // out
    end = -(-(np.arange(out) + 1) * size // out)
    k = int((end - start).max())
    rows = start[None, :] + np.arange(k)[:, None]
    return np.where(rows < end[None, :], rows, size), end - start


def adaptive_avg_pool2d(lw: Lowering, x: Any, output_size: Sequence[int]) -> Tensor:
    """``F.interpolate(mode='area')`` and adaptive average pooling: one ⊕ per window ÷ its pixel count."""
    t = lw.tensor(x)
    batched = t if t.ndim == 4 else lw.b.reshape(t, (1,) + t.shape)
    (rows, count_h), (cols, count_w) = (_adaptive_windows(d, int(o)) for d, o in zip(batched.shape[2:], output_size))
    padded = lw.b.pad(batched, ((0, 0), (0, 0), (0, 1), (0, 1)))
    win = lw.b.gather(lw.b.gather(padded, rows, axis=2), cols, axis=4)  # [N, C, kh, Ho, kw, Wo]
    y = lw.b.div(lw.b.sum(win, axis=(2, 4)), lw.constant((count_h[:, None] * count_w[None, :])[None, None]))
    return y if t.ndim == 4 else lw.b.reshape(y, y.shape[1:])


def max_pool2d(lw: Lowering, x: Any, kernel_size: Sequence[int], stride: Sequence[int] = (), padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False) -> Lazy:
    """A balanced max tree over each window; window positions in the padding read the nearest
    image element instead (it lies in the same window, so the maximum is unchanged). Indices: refused."""
    t = lw.tensor(x)
    batched = t if t.ndim == 4 else lw.b.reshape(t, (1,) + t.shape)
    kernel = _pair(kernel_size, 2, 1)
    stride = _pair(stride, 2, 0) if stride else kernel
    pad, dil = _pair(padding, 2, 0), _pair(dilation, 2, 1)
    sizes = [(d + 2 * p - dl * (k - 1) - 1) // s + 1 for d, p, k, s, dl in zip(batched.shape[2:], pad, kernel, stride, dil)]
    if ceil_mode and any((d + 2 * p - dl * (k - 1) - 1) % s for d, p, k, s, dl in zip(batched.shape[2:], pad, kernel, stride, dil)):
        raise GraphError(f"{lw.where()}: max pooling with ceil_mode that adds a partial window has no lowering")
    rows, cols = (np.clip(np.arange(k)[:, None] * dl + np.arange(o)[None, :] * s - p, 0, d - 1)
                  for k, dl, o, s, p, d in zip(kernel, dil, sizes, stride, pad, batched.shape[2:]))
    win = lw.b.gather(lw.b.gather(batched, rows, axis=2), cols, axis=4)  # [N, C, kh, Ho, kw, Wo]
    y = tree(lw, "max", win, (2, 4))
    y = y if t.ndim == 4 else lw.b.reshape(y, y.shape[1:])

    def indices() -> Tensor:
        raise GraphError(f"{lw.where()}: the indices of a max pooling have no lowering")

    return Lazy((lambda: y, indices))


def batch_norm(lw: Lowering, x: Any, weight: Any, bias: Any, mean: Any, var: Any, momentum: float, eps: float) -> Lazy:
    """Inference batch norm: (x − mean) ÷ √(var + eps) · weight + bias, the statistics per channel (axis 1)."""
    t = lw.tensor(x)
    shape = (t.shape[1],) + (1,) * (t.ndim - 2)
    v = lw.b.reshape(lw.tensor(var), shape)
    centered = lw.b.sub(t, lw.b.reshape(lw.tensor(mean), shape))
    y = _affine(lw, lw.b.div(centered, lw.b.sqrt(lw.b.add(v, scalar(lw.b, eps, v)))), weight, bias, shape)

    def statistic() -> Tensor:
        raise GraphError(f"{lw.where()}: the saved statistics of a batch norm have no lowering")

    return Lazy((lambda: y, statistic, statistic))


def batch_statistics_norm(lw: Lowering, x: Any, weight: Any, bias: Any, training: bool, momentum: float, eps: float) -> Lazy:
    """Batch norm with the batch's own statistics (what ``InstanceNorm`` exports): layer norm of each
    channel over the batch and all positions, then · weight + bias per channel."""
    t = lw.tensor(x)
    rest = [a for a in range(t.ndim) if a != 1]
    moved = lw.b.transpose(t, [1] + rest)
    normed = _normalized(lw, moved, (t.shape[1], math.prod(t.shape[a] for a in rest)), eps)
    back = lw.b.transpose(normed.parts[0](), [1, 0, *range(2, t.ndim)])
    y = _affine(lw, back, weight, bias, (t.shape[1],) + (1,) * (t.ndim - 2))
    return Lazy((lambda: y, *normed.parts[1:]))


def softmax(lw: Lowering, x: Any, dim: int, half_to_float: bool = False) -> Tensor:
    """e^x ÷ ⊕ e^x along ``dim`` (no maximum subtracted: equal in exact arithmetic; F_p's range
    holds e^x); masked scores: e^x · keep, so −∞ entries contribute exactly 0."""
    value, keep = (x.value, x.keep) if isinstance(x, Masked) else (lw.tensor(x), None)
    axis = dim % value.ndim
    e = lw.b.exp(value)
    if keep is not None:
        e = lw.b.mul(e, keep)
    total = lw.b.sum(e, axis=axis)
    return lw.b.div(e, lw.b.reshape(total, tuple(1 if i == axis else d for i, d in enumerate(value.shape))))


def log_softmax(lw: Lowering, x: Any, dim: int, half_to_float: bool = False) -> Tensor:
    """x − ln(⊕ e^x) along ``dim`` (no maximum subtracted)."""
    t = lw.tensor(x)
    axis = dim % t.ndim
    total = lw.b.log(lw.b.sum(lw.b.exp(t), axis=axis))
    return lw.b.sub(t, lw.b.reshape(total, tuple(1 if i == axis else d for i, d in enumerate(t.shape))))


def _affine(lw: Lowering, y: Tensor, weight: Any, bias: Any, shape: tuple[int, ...]) -> Tensor:
    if weight is not None:
        y = lw.b.mul(y, lw.b.reshape(lw.tensor(weight), shape))
    if bias is not None:
        y = lw.b.add(y, lw.b.reshape(lw.tensor(bias), shape))
    return y


def _statistics(lw: Lowering, flat: Tensor, eps: Any) -> tuple[Tensor, Tensor]:
    """(μ, 1 ÷ √(σ² + eps)) of each row of ``flat``, kept as [..., 1] (the outputs 1 and 2 of a norm)."""
    width = flat.shape[-1]
    total = lw.b.sum(flat, axis=flat.ndim - 1)
    mu = lw.b.reshape(lw.b.div(total, scalar(lw.b, width, total)), flat.shape[:-1] + (1,))
    centered = lw.b.sub(flat, mu)
    variance = lw.b.div(lw.b.sum(lw.b.mul(centered, centered), axis=flat.ndim - 1), scalar(lw.b, width, total))
    root = lw.b.sqrt(lw.b.add(variance, scalar(lw.b, eps, variance)))
    return mu, lw.b.reshape(lw.b.div(scalar(lw.b, 1, root), root), flat.shape[:-1] + (1,))


def _normalized(lw: Lowering, t: Tensor, rows: tuple[int, ...], eps: Any) -> Lazy:
    """(y, μ, rstd) of x normalised over each row of shape ``rows`` (y = (x − μ) ÷ √(σ² + eps))."""
    flat = lw.b.reshape(t, rows)
    y = lw.b.reshape(norms.layer_norm(lw.b, flat, eps), t.shape)
    stat = lambda i: (lambda: _statistics(lw, flat, eps)[i])  # noqa: E731
    return Lazy((lambda: y, stat(0), stat(1)))


def native_layer_norm(lw: Lowering, x: Any, shape: Sequence[int], weight: Any, bias: Any, eps: float) -> Lazy:
    """``ops.norms.layer_norm`` over the trailing ``shape`` axes, then ·weight + bias."""
    t = lw.tensor(x)
    k = len(shape)
    normed = _normalized(lw, t, t.shape[: t.ndim - k] + (math.prod(t.shape[t.ndim - k:]),), eps)
    y = _affine(lw, normed.parts[0](), weight, bias, tuple(t.shape[t.ndim - k:]))
    return Lazy((lambda: y, *normed.parts[1:]))


def native_group_norm(lw: Lowering, x: Any, weight: Any, bias: Any, n: int, c: int, hw: int, groups: int, eps: float) -> Lazy:
    """Layer norm of each group of c/groups channels (all pixels), then ·weight + bias per channel."""
    t = lw.tensor(x)
    normed = _normalized(lw, t, (n, groups, (c // groups) * hw), eps)
    y = _affine(lw, normed.parts[0](), weight, bias, (c,) + (1,) * (t.ndim - 2))
    return Lazy((lambda: y, *normed.parts[1:]))


def lookup(lw: Lowering, table: Tensor, index: Tensor, axis: int) -> Tensor:
    """``take(table, index, axis)`` with circuit-valued indices: ⊕_v [index = v] · table_v, where
    [index = v] = min([v − ½ < index], [index < v + ½]) (exact for integer indices in range)."""
    size = table.shape[axis]
    values = np.arange(size, dtype=np.float64).reshape((1,) * index.ndim + (size,))
    column = lw.b.reshape(index, index.shape + (1,))
    hot = lw.b.min(lw.b.compare(lw.constant(values - 0.5), column), lw.b.compare(column, lw.constant(values + 0.5)))
    rest = [i for i in range(table.ndim) if i != axis]
    moved = lw.b.transpose(table, [axis] + rest)
    tail = tuple(table.shape[i] for i in rest)
    products = lw.b.mul(lw.b.reshape(hot, hot.shape + (1,) * len(tail)), lw.b.reshape(moved, (1,) * index.ndim + moved.shape))
    out = lw.b.sum(products, axis=index.ndim)  # index.shape + tail
    r = index.ndim
    return lw.b.transpose(out, [*range(r, r + axis), *range(r), *range(r + axis, r + len(tail))])


def embedding(lw: Lowering, weight: Any, indices: Any, *_: Any) -> Tensor:
    """Rows of the table: a gather for folded indices, ``lookup`` for circuit-valued ones."""
    table = lw.tensor(weight)
    if isinstance(indices, Tensor):
        return lookup(lw, table, indices, 0)
    return lw.b.gather(table, np.asarray(indices.numpy() % table.shape[0]), axis=0)


_STATIC_INDEX = static_move(aten.index.Tensor)


def index(lw: Lowering, x: Any, indices: Sequence[Any]) -> Tensor:
    """Advanced indexing: folded indices are one gather; one circuit-valued index is a ``lookup``."""
    live = [i for i, v in enumerate(indices) if isinstance(v, Tensor)]
    if not live:
        return _STATIC_INDEX(lw, x, list(indices))
    if len(live) > 1 or any(v is not None for i, v in enumerate(indices) if i not in live):
        raise GraphError(f"{lw.where()}: indexing by more than one circuit-valued index has no lowering")
    return lookup(lw, lw.tensor(x), indices[live[0]], live[0])


def sdpa(lw: Lowering, q: Any, k: Any, v: Any, attn_mask: Any = None, dropout_p: float = 0.0, is_causal: bool = False,
         scale: float | None = None, enable_gqa: bool = False) -> Tensor:
    """softmax(scale·QKᵀ + mask)·V per head: unmasked, ``ops.mha.sdpa`` (⊕ e^s v ÷ ⊕ e^s); a causal or
    boolean mask multiplies e^s by 0/1 before both sums; a float mask is added to scale·QKᵀ."""
    qt, kt, vt = (lw.tensor(a) for a in (q, k, v))
    if dropout_p:
        raise GraphError(f"{lw.where()}: attention dropout is random; pass dropout_p = 0 (eval mode)")
    if enable_gqa and kt.shape[-3] != qt.shape[-3]:
        heads = np.arange(qt.shape[-3]) // (qt.shape[-3] // kt.shape[-3])
        kt, vt = (lw.b.gather(a, heads, axis=a.ndim - 3) for a in (kt, vt))
    factor = 1 / math.sqrt(qt.shape[-1]) if scale is None else scale
    n, m = qt.shape[-2], kt.shape[-2]
    keep, bias = None, None
    if is_causal:
        keep = lw.constant(np.tril(np.ones((n, m), dtype=np.int64)))
    elif (attn_mask.dtype if isinstance(attn_mask, torch.Tensor) else lw.arg_dtype(3, "attn_mask")) == torch.bool:
        keep = lw.tensor(attn_mask)
    elif attn_mask is not None:
        bias = _maskable(lw, attn_mask)
    if keep is None and bias is None:
        return mha.sdpa(lw.b, qt, kt, vt, factor)
    lead, d, e = qt.shape[:-2], qt.shape[-1], vt.shape[-1]
    r = len(lead)
    logits = lw.b.sum(lw.b.mul(lw.b.reshape(qt, (*lead, n, 1, d)), lw.b.reshape(kt, (*lead, 1, m, d))), axis=r + 2)
    scores: Any = lw.b.mul(logits, scalar(lw.b, factor, logits))
    if bias is not None:
        scores = add(lw, scores, bias)
    if isinstance(scores, Masked):
        scores, keep = scores.value, scores.keep
    weights = lw.b.exp(scores)
    if keep is not None:
        weights = lw.b.mul(weights, lw.b.broadcast(keep, scores.shape))
    total = lw.b.sum(weights, axis=r + 1)
    mixed = lw.b.sum(lw.b.mul(lw.b.reshape(weights, (*lead, n, m, 1)), lw.b.reshape(vt, (*lead, 1, m, e))), axis=r + 1)
    return lw.b.div(mixed, lw.b.reshape(total, (*lead, n, 1)))
