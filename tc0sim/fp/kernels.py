"""The F_p computation of every primitive, by the primitive's name (one rounding each: VAR
Definition 3.4, Lemma 3.5): the kernel table a ``Format`` applies."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import gmpy2

from tc0sim.errors import MissingKernelError
from tc0sim.fp.errors import DivisionByZero, ExpOverflow, FpArithmeticError, FpOverflow, NegativeSqrt


@dataclass(frozen=True)
class Kernel:
    """The F_p computation of one primitive, under the name the primitive table gives it.

    ``bind(F)`` returns the trapping scalar function of format F: it takes ``arity`` operands
    (a reduction, ``arity`` None, takes one list) and raises gmpy2's errors, which the Format turns
    into tc0sim's. ``fast`` is an optional array-path version that computes in the current gmpy2
    context (see ``Format.map``). ``infix`` spells the operation in error messages ("a + b");
    ``overflow`` and ``invalid`` are the errors raised on overflow and on an invalid operation.
    """

    name: str
    arity: int | None
    bind: Callable[[Any], Callable[..., Any]]
    fast: Callable[..., Any] | None = None
    infix: str = ""
    overflow: type[FpArithmeticError] = FpOverflow
    invalid: type[FpArithmeticError] = FpArithmeticError


KERNELS: dict[str, Kernel] = {}
"""Every F_p kernel by primitive name (one name per primitive across the IR and F_p)."""


def kernel(name: str, arity: int | None, bind: Callable[[Any], Callable[..., Any]], **options: Any) -> Kernel:
    """Define the F_p kernel of primitive ``name`` (see ``Kernel``); a name is defined once."""
    if name in KERNELS:
        raise ValueError(f"F_p kernel {name!r} is already defined")
    KERNELS[name] = Kernel(name, arity, bind, **options)
    return KERNELS[name]


def kernel_of(name: str, reduction: bool) -> Kernel:
    k = KERNELS.get(name)
    if k is None or (k.arity is None) != reduction:
        raise MissingKernelError(name, "reduction" if reduction else "elementwise")
    return k



def kernel_names(reduction: bool) -> tuple[str, ...]:
    """The names of the reduction kernels (``reduction``) or of the elementwise ones."""
    return tuple(k.name for k in KERNELS.values() if (k.arity is None) == reduction)


# The kernels of the primitive table (tc0sim.ir.primitives), one per compute primitive. The
# Python operators of the fast versions avoid the argument parsing of context methods.
kernel("add", 2, lambda F: F.context.add, fast=operator.add, infix="+")
kernel("sub", 2, lambda F: F.context.sub, fast=operator.sub, infix="-")
kernel("mul", 2, lambda F: F.context.mul, fast=operator.mul, infix="*")
kernel("div", 2, lambda F: F.context.div, fast=operator.truediv, infix="/", invalid=DivisionByZero)
kernel("max", 2, lambda F: F.context.maxnum)
kernel("min", 2, lambda F: F.context.minnum)
kernel("compare", 2, lambda F: (lambda a, b, one=F.one, zero=F.zero: one if a < b else zero))
kernel("relu", 1, lambda F: (lambda a, ctx=F.context, zero=F.zero: ctx.maxnum(a, zero)))
kernel("neg", 1, lambda F: F.context.minus)
kernel("exp", 1, lambda F: F.context.exp, fast=gmpy2.exp, overflow=ExpOverflow)
kernel("sqrt", 1, lambda F: F.context.sqrt, fast=gmpy2.sqrt, invalid=NegativeSqrt)
kernel("erf", 1, lambda F: F.context.erf, fast=gmpy2.erf)
kernel("log", 1, lambda F: F.context.log, fast=gmpy2.log)
kernel("sin", 1, lambda F: F.context.sin, fast=gmpy2.sin)
kernel("cos", 1, lambda F: F.context.cos, fast=gmpy2.cos)
kernel("sum", None, lambda F: F._sum_row)
kernel("prod", None, lambda F: F._prod_row)
