"""The validated model file (``ModelSpec``): its dims and params resolved at n, and its graph built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.expr import Expr
from tc0sim.ir.budget import BuildBudget
from tc0sim.ir.graph import Graph
from tc0sim.ir.vectors import Vec
from tc0sim.kinds import Kind, get_kind
from tc0sim.kinds import build as build_kind
from tc0sim.modelfile.messages import is_int, short

TOP_LEVEL_KEYS: dict[str, str] = {
    "kind": "the operator or model to build (required)",
    "precision": "p, the number of significand bits of F_p (integer >= 2); used by eval",
    "dims": "mapping of the kind's dims to positive integers or expressions in n",
    "params": "mapping of the kind's params (defaults apply to those left out)",
    "seed": "integer >= 0 seeding the inputs and weights not supplied (default 0)",
    "scale": "positive number: inputs and weights are drawn as normal(0, 1) * scale (default 1)",
    "n": "default value of n for dims written as expressions in n (integer >= 1)",
    "sweep": "list of integers >= 1: the n values `tc0sim size` uses when --n is not given",
    "description": "free text shown in reports",
    "claim": "the depth a paper claims for this model, a linear form such as \"6 d_std + 6 d_sum + d_exp\"; "
    "`tc0sim depth` prints it beside the computed depth as tight, slack or violated",
}
"""Every top-level key a model file may have (besides the kind's params), with its meaning."""

DEFAULT_SEED = 0
DEFAULT_SCALE = 1.0


@dataclass
class ModelSpec:
    """A validated model file: kind, dims (ints or Exprs in n), params, precision and input drawing."""

    kind: str
    dims: dict[str, int | Expr]
    params: dict[str, Any] = field(default_factory=dict)
    precision: int | None = None
    seed: int = DEFAULT_SEED
    scale: float = DEFAULT_SCALE
    n: int | None = None
    sweep: tuple[int, ...] | None = None
    description: str = ""
    claim: Vec | None = None
    source: str = "<model>"

    @property
    def kind_info(self) -> Kind:
        return get_kind(self.kind)

    @property
    def uses_n(self) -> bool:
        """Whether some dim or param is an expression that reads n."""
        return any("n" in e.names for e in self._expressions())

    def _expressions(self) -> list[Expr]:
        found = [v for v in self.dims.values() if isinstance(v, Expr)]
        for value in self.params.values():
            if isinstance(value, Expr):
                found.append(value)
            elif isinstance(value, list):
                found.extend(v for v in value if isinstance(v, Expr))
        return found

    def _n(self, n: int | None) -> dict[str, int]:
        if n is None:
            n = self.n
        if n is None:
            if self.uses_n:
                raise ConfigError(
                    f"{self.source}: the dims use n but no n was given (pass --n or add a top-level 'n:' key)"
                )
            return {}
        if not is_int(n) or n < 1:
            raise ConfigError(f"{self.source}: n must be an integer >= 1, got {short(n)}")
        return {"n": n}

    def dims_at(self, n: int | None = None) -> dict[str, int]:
        """The dims as integers at ``n`` (default: the file's ``n:``); each must come out >= 1."""
        env = self._n(n)
        out: dict[str, int] = {}
        for name, value in self.dims.items():
            if isinstance(value, Expr):
                try:
                    value = value.eval(env)
                except ConfigError as e:
                    raise ConfigError(f"{self.source}: key 'dims.{name}': {e}") from None
                if value < 1:
                    at = f" at n={env['n']}" if env else ""
                    raise ConfigError(
                        f"{self.source}: key 'dims.{name}': {self.dims[name]} evaluates to {value}{at}; "
                        "dims must be positive integers"
                    )
            out[name] = value
        return out

    def params_at(self, n: int | None = None) -> dict[str, Any]:
        """The params with every integer expression evaluated at ``n``."""
        env = self._n(n) if any(self._expressions()) else {}
        out: dict[str, Any] = {}
        for name, value in self.params.items():
            try:
                if isinstance(value, Expr):
                    value = value.eval(env)
                elif isinstance(value, list):
                    value = [v.eval(env) if isinstance(v, Expr) else v for v in value]
            except ConfigError as e:
                raise ConfigError(f"{self.source}: key 'params.{name}': {e}") from None
            out[name] = value
        return out

    def build(self, n: int | None = None, budget: BuildBudget | None = None, share: bool = False) -> Graph:
        """The Graph of this model at ``n``, within ``budget`` if given; a refusal names the file.
        ``share``: repeated sub-circuits are built once and called (for depth and size)."""
        dims = self.dims_at(n)
        params = self.params_at(n)
        try:
            return build_kind(self.kind, dims, params, budget, share)
        except ConfigError as e:
            raise ConfigError(f"{self.source}: {e}") from None

    def label(self, n: int | None = None) -> str:
        """'attention (n=6, d=4)' — the kind and its dims at n; the kind alone when it has no dims."""
        try:
            dims = self.dims_at(n)
        except ConfigError:
            dims = {k: str(v) for k, v in self.dims.items()}
        return f"{self.kind} ({', '.join(f'{k}={v}' for k, v in dims.items())})" if dims else self.kind
