"""What official model code assumes of its machine, made to hold while it is traced (docs/torch.md).

Research code often moves tensors it creates to the GPU by hand (FlowAR's rotary embedding calls
``torch.arange(n).cuda()``). A circuit has no devices, and tc0sim traces on the CPU: while a module is
exported without CUDA, ``Tensor.cuda`` returns the tensor itself, as it would on a one-device machine.
What torch prints of its own before an export fails (logged tracebacks, the partial graph written
to stderr) is silenced — the failure is still reported, on one line — and so are deprecation warnings;
what the traced code prints goes to stderr, so that a report on stdout (``--format json``) stays whole.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stderr, redirect_stdout
from typing import Any
from unittest import mock

import torch


def _same(self: torch.Tensor, *_: Any, **__: Any) -> torch.Tensor:
    return self


QUIET = ("torch._subclasses.fake_tensor", "torch.fx.experimental.symbolic_shapes", "torch._export", "torch.export")
"""Loggers that print tracebacks or graphs of their own while an export fails."""
HUSHED = (FutureWarning, DeprecationWarning)
"""Warning categories not shown while tracing (torch's and the traced code's deprecation notices)."""


@contextmanager
def tracing() -> Iterator[None]:
    """``Tensor.cuda`` as the identity when this PyTorch has no CUDA; stdout to stderr, stderr, ``QUIET``
    loggers and ``HUSHED`` warnings silenced."""
    loggers = [logging.getLogger(name) for name in QUIET]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), redirect_stdout(sys.stderr), redirect_stderr(io.StringIO()), \
                (nullcontext() if torch.cuda.is_available() else mock.patch.object(torch.Tensor, "cuda", _same)):
            for category in HUSHED:
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
