"""Claims as data (issue 28 item 4): the claim files' schema, dispatch by ``check`` only, and that a
claim is one data entry and a way of checking one module plus one ``CHECKERS`` entry.

Expected depths are derived by hand from the lowering of docs/operators.md (matmul: one layer of
products, one d_std, then one ⊕, one d_sum), never read from the code under test.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import pytest

from tc0sim.audit import var_release
from tc0sim.audit.audit import audit_claim, audit_model
from tc0sim.audit.checkers import CHECKERS
from tc0sim.audit.claims import CLAIM_FILES, CLAIMS, parse, registry
from tc0sim.audit.record import Checker, Claim, Verdict
from tc0sim.errors import ConfigError
from tc0sim.modelfile import load_model, loads_model

ROOT = Path(__file__).resolve().parents[1]

ONE_CLAIM = """
paper: Test
claims:
- id: TEST-MATMUL
  ref: Lemma T.1
  title: Matrix multiplication
  statement: The product of two n x n matrices has depth d_std + d_⊕.
  check: sweep
  kind: matmul
  dims: {n1: n, d: n, n2: n}
  depth: {d_std: 1, d_sum: 1}
  preconditions:
  - {text: d <= n, check: d <= n}
"""


def test_a_new_claim_is_one_data_entry(tmp_path: Path) -> None:
    """A throw-away claim file, loaded like the registry's and audited at its own sweep and on a file."""
    path = tmp_path / "test.yaml"
    path.write_text(ONE_CLAIM, encoding="utf-8")
    (claim,) = registry([(str(path), path.read_text(encoding="utf-8"))])
    assert (claim.id, claim.paper, claim.check, claim.dims) == ("TEST-MATMUL", "Test", "sweep", {"n1": "n", "d": "n", "n2": "n"})
    verdict = audit_claim(claim, (2, 3, 4))
    assert (verdict.verdict, verdict.computed, verdict.ns) == ("tight", "d_std + d_sum", [2, 3, 4])
    assert verdict.size_polynomial == "n^3 + n^2"  # n^3 products, then n^2 ⊕ gates (one per output)
    spec = loads_model("kind: matmul\ndims: {n1: 3, d: 3, n2: 3}\n", "<test>")
    (on_file,) = audit_model(spec, claims=[claim])
    assert (on_file.id, on_file.verdict, on_file.computed) == ("TEST-MATMUL", "tight", "d_std + d_sum")


def _constant(claim: Claim, ns: Sequence[int], gates_p: int | None) -> Verdict:
    return Verdict(claim.id, "slack", claim.runtime, f"read at n = {max(ns)}")


def test_a_new_way_of_checking_is_one_checker_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checker registered in CHECKERS (what a new module's CHECKER line does) is named by a claim
    entry, validated at load against the fields it needs, and dispatched to by audit_claim."""
    monkeypatch.setitem(CHECKERS, "constant", Checker(frozenset({"runtime"}), _constant, None))
    entry = ONE_CLAIM.replace("check: sweep", "check: constant").replace("  kind: matmul\n  dims: {n1: n, d: n, n2: n}\n", "  runtime: O(1)\n")
    (claim,) = parse(entry, "new.yaml")
    verdict = audit_claim(claim, (2, 5))
    assert (verdict.verdict, verdict.claimed, verdict.computed) == ("slack", "O(1)", "read at n = 5")
    with pytest.raises(ConfigError, match=r"new\.yaml: claim TEST-MATMUL: check 'constant' needs field 'runtime'"):
        parse(entry.replace("  runtime: O(1)\n", ""), "new.yaml")


def test_dispatch_reads_check_only() -> None:
    """A claim with a kind, dims and a runtime but ``check: unchecked`` is unchecked: nothing is inferred from fields."""
    entry = ONE_CLAIM.replace("check: sweep", "check: unchecked").replace("  kind: matmul\n", "  runtime: n^{3+o(1)}\n  unchecked: not on a DAG\n  kind: matmul\n")
    with pytest.raises(ConfigError, match="checker 'unchecked' does not audit model files"):
        parse(entry, "x.yaml")  # a kind is audited on files of that kind by the claim's own check
    (claim,) = parse(entry.replace("  kind: matmul\n  dims: {n1: n, d: n, n2: n}\n", ""), "x.yaml")
    verdict = audit_claim(claim)
    assert (verdict.verdict, verdict.notes) == ("unchecked", ["not on a DAG"])


BAD_ENTRIES = {
    "unknown field 'depht'": ("depth: {d_std: 1, d_sum: 1}", "depht: {d_std: 1, d_sum: 1}"),
    "missing field 'statement'": ("  statement: The product of two n x n matrices has depth d_std + d_⊕.\n", ""),
    "field 'depth_o1' must be true or false": ("  depth: {", "  depth_o1: 'yes'\n  depth: {"),
    "field 'preconditions' must be a list": ("check: d <= n}", "chek: d <= n}"),
    "field 'dims' must be a mapping": ("dims: {n1: n, d: n, n2: n}", "dims: [n, n, n]"),
    "names unknown checker 'swep'": ("check: sweep", "check: swep"),
    "check 'sweep' needs field 'kind'": ("  kind: matmul\n  dims: {n1: n, d: n, n2: n}\n", ""),
    "checker 'release' audits model files only": ("check: sweep", "check: release"),
    "files: var names unknown checker": ("  depth: {", "  files: {var: nothing}\n  depth: {"),
    "no release audit for kind matmul": ("  depth: {", "  files: {matmul: release}\n  depth: {"),
    "depth {'d_std': 0} needs positive counts": ("depth: {d_std: 1, d_sum: 1}", "depth: {d_std: 0}"),
}


@pytest.mark.parametrize("message", list(BAD_ENTRIES))
def test_schema_errors_name_the_file_and_the_claim(message: str) -> None:
    old, new = BAD_ENTRIES[message]
    assert old in ONE_CLAIM
    with pytest.raises(ConfigError) as error:
        parse(ONE_CLAIM.replace(old, new), "claims/bad.yaml")
    assert str(error.value).startswith("claims/bad.yaml: claim TEST-MATMUL: ")
    assert message in str(error.value)


def test_file_level_errors() -> None:
    with pytest.raises(ConfigError, match=r"^b\.yaml: not valid YAML"):
        parse("paper: [", "b.yaml")
    with pytest.raises(ConfigError, match=r"^b\.yaml: expected a mapping with exactly 'paper'"):
        parse("claims: []", "b.yaml")
    with pytest.raises(ConfigError, match=r"^b\.yaml: claim #1: expected a mapping"):
        parse("paper: P\nclaims: [3]", "b.yaml")
    with pytest.raises(ConfigError, match=r"^b\.yaml: claim TEST-MATMUL: the id is already given in a\.yaml"):
        registry([("a.yaml", ONE_CLAIM), ("b.yaml", ONE_CLAIM)])


def test_every_registry_claim_names_a_checker_and_every_checker_is_used() -> None:
    named = {c.check for c in CLAIMS} | {name for c in CLAIMS for name in c.files.values()}
    assert named == set(CHECKERS)


def test_the_claim_files_ship_as_package_data() -> None:
    """The files are package resources, and pyproject.toml's package data covers them (a wheel ships them)."""
    package = resources.files("tc0sim.audit.claims")
    assert all((package / name).is_file() for name in CLAIM_FILES)
    with open(ROOT / "pyproject.toml", "rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["tc0sim.audit.claims"]
    assert all(any(Path(name).match(glob) for glob in globs) for name in CLAIM_FILES)


def test_release_audit_sizes_the_graph_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 32 item 5: the released graph's size is computed once per audit, not once per occurrence."""
    calls = []
    real = var_release.size
    monkeypatch.setattr(var_release, "size", lambda graph: calls.append(graph) or real(graph))
    var_release.audit_release(load_model(ROOT / "examples" / "var_small.yaml").params_at(None))
    assert len(calls) == 1
