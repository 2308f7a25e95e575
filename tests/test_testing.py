"""The pytest plugin tc0sim.testing: loaded through its entry point, assertions and failure messages.

Depths are derived by hand from the lowerings of SPEC §3: matmul is d_std + d_sum (one layer of
products, one ⊕); the attention matrix is three matmuls then exp: 3 d_std + 3 d_sum + d_exp.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from tc0sim.kinds import build
from tc0sim.modelfile import loads_model
from tc0sim.testing import as_graph, assert_depth_at_most, assert_depth_equals

pytest_plugins = ["pytester"]

MATMUL = ("matmul", {"n1": 2, "d": 3, "n2": 2})
ATTENTION_MATRIX = ("attention_matrix", {"n": 3, "d": 2})


def test_model_forms_are_accepted(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("kind: matmul\ndims: {n1: n, d: 3, n2: 2}\nn: 2\n")
    graph = build(*MATMUL)
    for model in (graph, MATMUL, ("matmul", {"n1": 2, "d": 3, "n2": 2}, {}), str(path), path, loads_model(path.read_text())):
        assert_depth_equals(model, "d_std + d_sum")
        assert_depth_at_most(model, {"d_std": 1, "d_sum": 1})
    assert len(as_graph(str(path), n=5).inputs) == 2
    with pytest.raises(TypeError, match="expected a Graph"):
        as_graph(42)


def test_at_most_passes_on_slack_and_equal():
    assert_depth_at_most(ATTENTION_MATRIX, "3 d_std + 3 d_sum + d_exp")
    assert_depth_at_most(ATTENTION_MATRIX, "3(d_std + d_sum) + 2 d_exp + d_sqrt")


def test_at_most_failure_prints_the_violating_vector_and_path():
    with pytest.raises(AssertionError) as info:
        assert_depth_at_most(ATTENTION_MATRIX, "2 d_std + 3 d_sum + d_exp")
    message = str(info.value)
    assert "depth exceeds the claim" in message
    assert "claimed 2 d_std + 3 d_sum + d_exp" in message
    assert "critical vector 3 d_std + 3 d_sum + d_exp" in message
    assert "VAR Lemma 5.3" in message
    assert "attention_matrix" in message and "(exp)" in message


def test_equals_failure_on_slack():
    with pytest.raises(AssertionError, match="depth differs from the claim; claimed 2 d_std \\+ d_sum"):
        assert_depth_equals(MATMUL, "2 d_std + d_sum")


def test_bad_claim_text_is_a_config_error():
    from tc0sim.errors import ConfigError

    with pytest.raises(ConfigError):
        assert_depth_at_most(MATMUL, "d_foo")


def _plugin_installed() -> bool:
    return any(e.value == "tc0sim.testing" for e in entry_points(group="pytest11"))


needs_entry_point = pytest.mark.skipif(
    not _plugin_installed(), reason="tc0sim is not installed (pip install -e .), so its pytest11 entry point is absent"
)


@needs_entry_point
def test_plugin_loads_through_the_entry_point(pytester):
    pytester.makepyfile(
        """
        from tc0sim.testing import assert_depth_at_most

        def test_fixture_and_assertion(tc0sim_build, tc0sim_depth):
            graph = tc0sim_build("matmul", {"n1": 2, "d": 2, "n2": 2})
            assert tc0sim_depth(graph).as_dict()["linear"] == ["d_std + d_sum"]
            assert_depth_at_most(graph, "d_std + d_sum")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["tc0sim *: assert_depth_at_most*"])
    assert "tc0sim" in result.stdout.str()


@needs_entry_point
def test_plugin_failure_output_shows_the_path(pytester):
    pytester.makepyfile(
        """
        from tc0sim.testing import assert_depth_at_most

        def test_attention_claim(tc0sim_build):
            graph = tc0sim_build("attention_matrix", {"n": 3, "d": 2})
            assert_depth_at_most(graph, "2 d_std + 2 d_sum + d_exp")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*depth exceeds the claim; claimed 2 d_std + 2 d_sum + d_exp*",
            "*critical vector 3 d_std + 3 d_sum + d_exp, witness path by operator:*",
            "*attention_matrix*VAR Lemma 5.3*d_exp*(exp)*",
        ]
    )


@needs_entry_point
def test_plugin_is_absent_when_disabled(pytester):
    pytester.makepyfile(
        """
        def test_uses_fixture(tc0sim_build):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:tc0sim", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'tc0sim_build' not found*"])
