"""THE lowering table: one entry per core-ATen op overload → the rule that emits its primitives.

A rule is ``rule(lw, *args, **kwargs)`` (``values.Lowering``) and returns the op's value(s);
``docs/torch.md`` states each entry's F_p meaning. ``MOVES`` are the pure data movements (they
also carry −∞ attention masks through); ``NO_CIRCUIT`` ops assert metadata and emit nothing.
An op that is in no table and reads circuit values is reported by the driver (``lower``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from tc0sim.frontends.torch import nn, order, pointwise as pw, reduce, shape

aten = torch.ops.aten
Rule = Callable[..., Any]

MOVES: dict[Any, Rule] = {
    aten.view.default: shape.view,
    aten._unsafe_view.default: shape.view,
    aten.reshape.default: shape.view,
    aten.permute.default: shape.permute,
    aten.transpose.int: shape.transpose,
    aten.t.default: shape.t,
    aten.expand.default: shape.expand,
    aten.unsqueeze.default: shape.unsqueeze,
    aten.squeeze.dims: shape.squeeze,
    aten.squeeze.dim: shape.squeeze,
    aten.squeeze.default: shape.squeeze,
    aten.slice.Tensor: shape.slice_,
    aten.select.int: shape.select,
    aten.clone.default: pw.identity,
    aten.alias.default: pw.identity,
    aten.detach.default: pw.identity,
    aten.lift_fresh_copy.default: pw.identity,
    aten.contiguous.default: pw.identity,
}
"""Moves of one operand that a −∞ mask passes through (applied to its scores and its keep)."""

NO_CIRCUIT: frozenset[Any] = frozenset({
    aten._assert_tensor_metadata.default, aten._assert_scalar.default, aten.sym_constrain_range_for_size.default,
    aten.sym_constrain_range.default, aten._assert_async.msg,
})
"""Assertions on metadata: nothing to compute."""

LOWERINGS: dict[Any, Rule] = {
    **{op: shape.masks_move(rule) for op, rule in MOVES.items()},
    **{op: pw.nothing for op in NO_CIRCUIT},
    # wiring of several operands, and moves with static arguments (one gather)
    aten.cat.default: shape.cat,
    aten.split_with_sizes.default: shape.split_with_sizes,
    aten.split.Tensor: shape.split,
    aten.unbind.int: shape.unbind,
    aten.constant_pad_nd.default: shape.constant_pad_nd,
    aten.flip.default: shape.static_move(aten.flip.default),
    aten.roll.default: shape.static_move(aten.roll.default),
    aten.repeat.default: shape.static_move(aten.repeat.default),
    aten.index_select.default: shape.static_move(aten.index_select.default),
    aten.gather.default: shape.static_move(aten.gather.default),
    aten.tril.default: shape.static_move(aten.tril.default),
    aten.triu.default: shape.static_move(aten.triu.default),
    aten.diagonal.default: shape.static_move(aten.diagonal.default),
    aten.unfold.default: shape.static_move(aten.unfold.default),
    aten.slice_scatter.default: shape.static_scatter(aten.slice_scatter.default),
    aten.select_scatter.default: shape.static_scatter(aten.select_scatter.default),
    aten.diagonal_scatter.default: shape.static_scatter(aten.diagonal_scatter.default),
    aten.index_put.default: shape.index_put,
    aten.copy.default: shape.copy,
    aten.index.Tensor: nn.index,
    aten.embedding.default: nn.embedding,
    # elementwise
    aten.add.Tensor: pw.add,
    aten.add.Scalar: pw.add,
    aten.sub.Tensor: pw.sub,
    aten.sub.Scalar: pw.sub,
    aten.rsub.Scalar: pw.rsub,
    aten.rsub.Tensor: pw.rsub,
    aten.mul.Tensor: pw.mul,
    aten.mul.Scalar: pw.mul,
    aten.div.Tensor: pw.div,
    aten.div.Scalar: pw.div,
    aten.div.Tensor_mode: pw.div,
    aten.maximum.default: pw.binary("max"),
    aten.minimum.default: pw.binary("min"),
    aten.clamp.default: pw.clamp,
    aten.clamp.Tensor: pw.clamp,
    aten.clamp_min.default: lambda lw, x, lo: pw.clamp(lw, x, lo, None),
    aten.clamp_max.default: lambda lw, x, hi: pw.clamp(lw, x, None, hi),
    aten.relu.default: pw.unary("relu"),
    aten.hardtanh.default: pw.hardtanh,
    aten.leaky_relu.default: pw.leaky_relu,
    aten.elu.default: pw.elu,
    aten.sign.default: pw.sign,
    aten.where.self: pw.where,
    aten.lt.Tensor: pw.lt,
    aten.lt.Scalar: pw.lt,
    aten.gt.Tensor: pw.gt,
    aten.gt.Scalar: pw.gt,
    aten.le.Tensor: pw.le,
    aten.le.Scalar: pw.le,
    aten.ge.Tensor: pw.ge,
    aten.ge.Scalar: pw.ge,
    aten.eq.Tensor: pw.eq,
    aten.eq.Scalar: pw.eq,
    aten.ne.Tensor: pw.ne,
    aten.ne.Scalar: pw.ne,
    aten.logical_not.default: pw.logical_not,
    aten.logical_and.default: pw.logical_and,
    aten.logical_or.default: pw.logical_or,
    aten.bitwise_not.default: pw.on_bools(pw.logical_not),
    aten.bitwise_and.Tensor: pw.on_bools(pw.logical_and),
    aten.bitwise_or.Tensor: pw.on_bools(pw.logical_or),
    aten.neg.default: pw.unary("neg"),
    aten.abs.default: pw.abs_,
    aten.exp.default: pw.unary("exp"),
    aten.sqrt.default: pw.unary("sqrt"),
    aten.erf.default: pw.unary("erf"),
    aten.log.default: pw.unary("log"),
    aten.sin.default: pw.unary("sin"),
    aten.cos.default: pw.unary("cos"),
    aten.log1p.default: pw.log1p,
    aten.expm1.default: pw.expm1,
    aten.rsqrt.default: pw.rsqrt,
    aten.reciprocal.default: pw.reciprocal,
    aten.pow.Tensor_Scalar: pw.pow_scalar,
    aten.pow.Scalar: pw.pow_base,
    aten.exp2.default: lambda lw, x: pw.pow_base(lw, 2, x),
    aten.sigmoid.default: pw.sigmoid,
    aten.silu.default: pw.silu,
    aten.tanh.default: pw.tanh,
    aten.gelu.default: pw.gelu,
    aten._to_copy.default: pw.to_copy,
    # reductions
    aten.sum.dim_IntList: reduce.sum_,
    aten.sum.default: reduce.sum_,
    aten.prod.dim_int: reduce.prod,
    aten.prod.default: reduce.prod,
    aten.mean.dim: reduce.mean,
    aten.mean.default: reduce.mean,
    aten.var.correction: reduce.var,
    aten.var_mean.correction: reduce.var_mean,
    aten.amax.default: reduce.extreme("max"),
    aten.amin.default: reduce.extreme("min"),
    aten.any.dim: reduce.logical("max"),
    aten.any.dims: reduce.logical("max"),
    aten.any.default: reduce.logical("max"),
    aten.all.dim: reduce.logical("min"),
    aten.all.dims: reduce.logical("min"),
    aten.all.default: reduce.logical("min"),
    aten.cumsum.default: reduce.cumsum,
    aten.max.default: reduce.extreme("max"),
    aten.min.default: reduce.extreme("min"),
    # order (rank counting: values and indices)
    aten.sort.default: order.sort,
    aten.sort.stable: order.sort_stable,
    aten.topk.default: order.topk,
    aten.argmax.default: order.arg(True),
    aten.argmin.default: order.arg(False),
    aten.max.dim: order.extreme_with_index("max"),
    aten.min.dim: order.extreme_with_index("min"),
    aten.linalg_vector_norm.default: reduce.vector_norm,
    # matrices, convolution, normalisation, attention, pooling
    aten.mm.default: nn.mm,
    aten.bmm.default: nn.bmm,
    aten.addmm.default: nn.addmm,
    aten.convolution.default: nn.convolution,
    aten.avg_pool2d.default: nn.avg_pool2d,
    aten._adaptive_avg_pool2d.default: nn.adaptive_avg_pool2d,
    aten.max_pool2d_with_indices.default: nn.max_pool2d,
    aten._native_batch_norm_legit_no_training.default: nn.batch_norm,
    aten._native_batch_norm_legit.no_stats: nn.batch_statistics_norm,
    aten._softmax.default: nn.softmax,
    aten._log_softmax.default: nn.log_softmax,
    aten.native_layer_norm.default: nn.native_layer_norm,
    aten.native_group_norm.default: nn.native_group_norm,
    aten.scaled_dot_product_attention.default: nn.sdpa,
}
"""Every op overload with a lowering."""
