"""The reports of tc0sim's commands, as a library: each function computes once and returns a report
whose ``sections()`` are what ``--format text|markdown`` prints and whose ``as_dict()`` is what
``--format json`` prints (docs/api.md). The command line (``tc0sim.cli``) only parses options,
calls one of these and prints."""

from importlib import import_module
from typing import Any

_HOMES = {
    "approx": ("contextual_report", "perturbation_report", "separateness_report"),
    "audit": ("AuditReport", "audit_report"),
    "base": ("Report", "Section"),
    "claims": ("ClaimsReport", "claims_report"),
    "demo": ("DemoReport", "demo_report"),
    "depth": ("DepthReport", "depth_report"),
    "graph": ("GraphReport", "graph_report"),
    "kinds": ("KindsReport", "kinds_report"),
    "show": ("ShowReport", "show_report"),
    "size": ("SizeReport", "size_report"),
    "threshold": ("ThresholdReport", "threshold_report"),
}
"""Each public name's module; a module is imported when one of its names is first used (the
command line imports only the report it runs)."""

_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'tc0sim.reports' has no attribute {name!r}")
    return getattr(import_module(f"tc0sim.reports.{_MODULE_OF[name]}"), name)


__all__ = [
    "AuditReport", "ClaimsReport", "DemoReport", "DepthReport", "GraphReport", "KindsReport", "Report", "Section",
    "ShowReport", "SizeReport", "ThresholdReport", "audit_report", "claims_report", "contextual_report", "demo_report", "depth_report",
    "graph_report", "kinds_report", "perturbation_report", "separateness_report", "show_report", "size_report", "threshold_report",
]
