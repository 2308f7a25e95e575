"""What official model code assumes of its machine, made to hold while it is traced (docs/torch.md).

Research code often moves tensors it creates to the GPU by hand (FlowAR's rotary embedding calls
``torch.arange(n).cuda()``). A circuit has no devices, and tc0sim traces on the CPU: while a module is
exported without CUDA, ``Tensor.cuda`` returns the tensor itself, as it would on a one-device machine.
torch's fake-tensor logger, which prints a traceback of its own before an export fails, is silenced
(the failure is still reported, on one line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import torch


def _same(self: torch.Tensor, *_: Any, **__: Any) -> torch.Tensor:
    return self


QUIET = ("torch._subclasses.fake_tensor",)
"""Loggers that print tracebacks of their own while an export fails."""


@contextmanager
def tracing() -> Iterator[None]:
    """``Tensor.cuda`` as the identity when this PyTorch has no CUDA; ``QUIET`` loggers silenced."""
    loggers = [logging.getLogger(name) for name in QUIET]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    try:
        if torch.cuda.is_available():
            yield
        else:
            with mock.patch.object(torch.Tensor, "cuda", _same):
                yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
