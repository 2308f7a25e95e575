"""Model files (tc0sim.modelfile): validation with precise one-line errors, dims in n, building."""

from __future__ import annotations

from pathlib import Path

import pytest

from tc0sim.ir.primitives import SYMBOLS
from tc0sim.errors import ConfigError
from tc0sim.interp.size import size
from tc0sim.kinds import kind_names
from tc0sim.modelfile import TOP_LEVEL_KEYS, ModelSpec, load_model, loads_model

MATMUL = "kind: matmul\nprecision: 8\ndims: {n1: 2, d: 3, n2: 4}\n"


def write(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        spec = load_model(path)
        spec.dims_at()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def test_scale_in_exponent_notation_is_a_number(tmp_path):
    """YAML 1.1 reads 1e-3 (no dot) as a string; a model file means the number."""
    spec = load_model(write(tmp_path, "kind: matmul\nscale: 1e-3\ndims: {n1: 1, d: 1, n2: 1}\n"))
    assert spec.scale == 0.001


def test_a_valid_file_loads_with_defaults(tmp_path):
    spec = load_model(write(tmp_path, MATMUL))
    assert isinstance(spec, ModelSpec)
    assert (spec.kind, spec.precision, spec.seed, spec.scale, spec.n) == ("matmul", 8, 0, 1.0, None)
    assert spec.dims_at() == {"n1": 2, "d": 3, "n2": 4}
    assert not spec.uses_n
    graph = spec.build()
    # matmul X[2,3]·Y[3,4]: 2·3·4 products and 2·4 sums (counted by hand)
    assert size(graph).total == 2 * 3 * 4 + 2 * 4


def test_dims_as_expressions_in_n(tmp_path):
    spec = load_model(write(tmp_path, "kind: matmul\ndims: {n1: n, d: 2*n, n2: n//2 + 1}\nn: 4\n"))
    assert spec.uses_n
    assert spec.dims_at() == {"n1": 4, "d": 8, "n2": 3}
    assert spec.dims_at(10) == {"n1": 10, "d": 20, "n2": 6}
    assert size(spec.build(3)).total == 3 * 6 * 2 + 3 * 2


def test_constant_expression_dims_are_integers(tmp_path):
    spec = load_model(write(tmp_path, 'kind: matmul\ndims: {n1: "2*3", d: "10 // 3", n2: 1}\n'))
    assert spec.dims == {"n1": 6, "d": 3, "n2": 1}
    assert not spec.uses_n


def test_n_required_when_the_dims_use_it(tmp_path):
    spec = load_model(write(tmp_path, "kind: matmul\ndims: {n1: n, d: 2, n2: 2}\n"))
    with pytest.raises(ConfigError, match="use n but no n was given"):
        spec.dims_at()
    assert spec.dims_at(5)["n1"] == 5


def test_an_expression_that_goes_non_positive_at_n(tmp_path):
    spec = load_model(write(tmp_path, "kind: matmul\ndims: {n1: n - 3, d: 2, n2: 2}\n"))
    with pytest.raises(ConfigError, match=r"dims.n1.*n - 3 evaluates to 0 at n=3; dims must be positive"):
        spec.dims_at(3)


@pytest.mark.parametrize(
    "text,fragments",
    [
        ("", ["empty model file"]),
        ("# only a comment\n", ["empty model file"]),
        ("- 1\n- 2\n", ["expected a mapping", "got a list"]),
        ("just text\n", ["expected a mapping", "got a string"]),
        ("precision: 8\ndims: {n: 1}\n", ["missing key 'kind'", "matmul", "attention"]),
        ("kind: transformer\ndims: {}\n", ["key 'kind'", "unknown kind 'transformer'", "expected one of", "matmul"]),
        ("kind: 3\n", ["key 'kind'", "expected a string", "got an integer"]),
        ("kind: matmul\n", ["missing key 'dims'", "n1, d, n2"]),
        ("kind: matmul\ndims: [1, 2, 3]\n", ["key 'dims'", "expected a mapping", "got a list"]),
        ("kind: matmul\ndims: {n1: 2, d: 2}\n", ["key 'dims'", "missing n2"]),
        ("kind: matmul\ndims: {n1: 2, d: 2, n2: 2, k: 3}\n", ["key 'dims.k'", "no such dim"]),
        ("kind: matmul\ndims: {n1: 2, d: -1, n2: 2}\n", ["key 'dims.d'", "positive integer", "-1"]),
        ("kind: matmul\ndims: {n1: 2, d: 0, n2: 2}\n", ["key 'dims.d'", "positive integer", "got 0"]),
        ("kind: matmul\ndims: {n1: 2, d: 2.5, n2: 2}\n", ["key 'dims.d'", "expected a positive integer or an expression", "a float"]),
        ("kind: matmul\ndims: {n1: 2, d: true, n2: 2}\n", ["key 'dims.d'", "a boolean"]),
        ("kind: matmul\ndims: {n1: 2, d: 10000000000000000, n2: 2}\n", ["key 'dims.d'", "too large"]),
        ('kind: matmul\ndims: {n1: 2, d: "n*n*n*n*n*n", n2: 2}\nn: 1000\n', ["key 'dims.d'", "too large"]),
        ('kind: matmul\ndims: {n1: 2, d: "2*m", n2: 2}\n', ["key 'dims.d'", "unknown name 'm' at position 2", "allowed names: n"]),
        ('kind: matmul\ndims: {n1: 2, d: "n +* 2", n2: 2}\n', ["key 'dims.d'", "position 3", "found '*'"]),
        ('kind: matmul\ndims: {n1: 2, d: "n // 0", n2: 2}\nn: 3\n', ["key 'dims.d'", "division by zero"]),
        ('kind: matmul\ndims: {n1: 2, d: "1 - 5", n2: 2}\n', ["key 'dims.d'", "evaluates to -4"]),
        (MATMUL + "precision: 1\n", ["repeated key 'precision'"]),
        ("kind: matmul\nprecision: 1\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'precision'", "integer >= 2", "got 1"]),
        ("kind: matmul\nprecision: '24'\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'precision'", "got '24'"]),
        ("kind: matmul\nseed: -1\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'seed'", "integer >= 0"]),
        ("kind: matmul\nseed: 1.5\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'seed'"]),
        ("kind: matmul\nscale: 0\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'scale'", "positive number"]),
        ("kind: matmul\nscale: .nan\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'scale'", "positive number"]),
        ("kind: matmul\nscale: big\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'scale'"]),
        ("kind: matmul\nn: 0\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'n'", "integer >= 1"]),
        ("kind: matmul\nsweep: [1, x]\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'sweep'", "list of integers"]),
        ("kind: matmul\nsweep: [2, 2]\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'sweep'", "distinct"]),
        ("kind: matmul\ndescription: [1]\ndims: {n1: 1, d: 1, n2: 1}\n", ["key 'description'", "a string"]),
        ("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nprecison: 8\n", ["unknown key 'precison'", "expected one of", "precision"]),
        ("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nparams: {t: 1}\n", ["key 'params.t'", "no such param", "none"]),
        ("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nparams: [1]\n", ["key 'params'", "expected a mapping"]),
        ("kind: aattc\ndims: {n: 2, d: 2}\nparams: {g: 2}\ng: 3\n", ["'g'", "both at the top level and under 'params'"]),
        ("kind: aattc\ndims: {n: 2, d: 2}\nparams: {g: two}\n", ["key 'params.g'", "unknown name 'two'"]),
        ("kind: matmul\ndims: {n1: 1, d: 1, n2: 1\n", ["invalid YAML", "line"]),
        ("kind: matmul\n  dims: 3\n", ["invalid YAML", "line 2"]),
        ("!!python/object/apply:os.system ['echo pwned']\n", ["YAML tag not allowed", "python/object/apply:os.system"]),
        ("kind: !!python/object/apply:os.system ['echo pwned']\n", ["YAML tag not allowed"]),
        ("kind: !!python/name:os.system\n", ["YAML tag not allowed"]),
        ("kind: matmul\ndims: !!python/object:collections.OrderedDict {}\n", ["YAML tag not allowed"]),
    ],
)
def test_malformed_files_give_precise_errors(tmp_path, text, fragments):
    message = error_of(tmp_path, text)
    for fragment in fragments:
        assert fragment in message, message


def test_python_tags_never_run(tmp_path):
    marker = tmp_path / "pwned"
    error_of(tmp_path, f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such model file"):
        load_model(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_model(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_model(binary)


def test_model_params_at_top_level_or_under_params(tmp_path):
    top = load_model(write(tmp_path, "kind: aattc\ndims: {n: 3, d: 2}\ng: 3\n", "top.yaml"))
    nested = load_model(write(tmp_path, "kind: aattc\ndims: {n: 3, d: 2}\nparams: {g: 3}\n", "nested.yaml"))
    assert top.params == nested.params == {"g": 3}
    assert size(top.build()).total == size(nested.build()).total


def test_integer_params_may_be_expressions_in_n(tmp_path):
    spec = load_model(write(tmp_path, 'kind: aattc\ndims: {n: n, d: 2}\nparams: {g: "n - 1"}\nn: 3\n'))
    assert spec.uses_n
    assert spec.params_at() == {"g": 2}
    assert spec.params_at(4) == {"g": 3}


def test_a_kind_refusing_its_params_is_reported_with_the_file(tmp_path):
    spec = load_model(write(tmp_path, "kind: flow\ndims: {h: 1, w: 1, c: 1}\nparams: {t: 2}\n"))
    with pytest.raises(ConfigError) as info:
        spec.build()
    assert str(info.value).startswith(str(tmp_path / "model.yaml"))
    assert "t" in str(info.value)


def test_every_kind_is_known_and_top_level_keys_are_documented():
    names = kind_names()
    for expected in ("matmul", "upsample", "downsample", "attention_matrix", "attention", "mlp", "ffn",
                     "layernorm", "conv2d", "flow", "flow_bezier", "flow_matching", "aattc"):
        assert expected in names
    docs = (Path(__file__).resolve().parents[1] / "docs" / "model_files.md").read_text(encoding="utf-8")
    for key in TOP_LEVEL_KEYS:
        assert f"`{key}`" in docs


def test_loads_model_names_its_source():
    with pytest.raises(ConfigError, match=r"^inline: missing key 'kind'"):
        loads_model("dims: {}\n", source="inline")


# ------------------------------------------------------------------- bounds of the YAML loader


def _nested(depth: int) -> str:
    return "kind: var\ndims: {h: 4, w: 4, c: 2}\ndescription: " + "[" * depth + "x" + "]" * depth + "\n"


def test_nesting_limit_is_exact():
    # the document mapping is level 1; description's lists add `depth` levels
    from tc0sim.limits import MAX_YAML_NESTING

    with pytest.raises(ConfigError, match="'description': expected a string"):
        loads_model(_nested(MAX_YAML_NESTING - 1), "f.yaml")
    with pytest.raises(ConfigError, match=f"nested more than {MAX_YAML_NESTING} levels"):
        loads_model(_nested(MAX_YAML_NESTING), "f.yaml")
    with pytest.raises(ConfigError, match="nested more than"):
        loads_model("[" * 100000, "f.yaml")


def test_alias_expansion_is_counted():
    from tc0sim.limits import MAX_YAML_NODES

    # a list of k aliases to a list of k scalars expands to 1 + k * (1 + k) nodes
    k = 1000
    text = "kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nx: &a [" + ", ".join(["1"] * k) + "]\n"
    big = text + "y: [" + ", ".join(["*a"] * k) + "]\n"
    assert 1 + k * (1 + k) > MAX_YAML_NODES
    with pytest.raises(ConfigError, match="YAML nodes with aliases expanded"):
        loads_model(big, "f.yaml")
    small = text + "y: [" + ", ".join(["*a"] * 100) + "]\n"
    with pytest.raises(ConfigError, match="unknown key 'x'"):  # parsed fine, then validated
        loads_model(small, "f.yaml")


def test_recursive_alias_is_refused():
    with pytest.raises(ConfigError, match="alias refers to a collection that contains it"):
        loads_model("kind: var\ndims: {h: 4, w: 4, c: 2}\ndecoder: &d [resnet, *d]\n", "f.yaml")


def test_integer_literals_are_bounded_before_conversion():
    from tc0sim.limits import MAX_YAML_INT_CHARS

    ok = "kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nseed: " + "1" * 18 + "\n"
    assert loads_model(ok, "f.yaml").seed == int("1" * 18)
    for literal in ("9" * (MAX_YAML_INT_CHARS + 1), "9" * 5000, ":".join(["59"] * 20)):
        with pytest.raises(ConfigError, match=f"longer than {MAX_YAML_INT_CHARS} characters"):
            loads_model("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nseed: " + literal + "\n", "f.yaml")


def test_seed_and_file_size_limits(tmp_path):
    from tc0sim.limits import MAX_FILE_BYTES

    with pytest.raises(ConfigError, match="key 'seed'.*2\\^63"):
        loads_model("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nseed: 9223372036854775808\n", "f.yaml")
    assert loads_model("kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nseed: 9223372036854775807\n", "f.yaml").seed == 2**63 - 1
    path = tmp_path / "long.yaml"
    path.write_text("kind: matmul\n" + "#" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"longer than {MAX_FILE_BYTES:,} characters"):
        load_model(path)


def test_claim_key():
    spec = loads_model('kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nclaim: "3(d_std + d_sum) + d_exp"\n', "f.yaml")
    assert spec.claim == (3, 3, 0, 1, 0) + (0,) * (len(SYMBOLS) - 5)
    for bad, fragment in (("d_foo", "unknown depth symbol"), ("²d_std", "ASCII"), (3, "a linear form"), ("1" * 300 + " d_std", "at most 200")):
        with pytest.raises(ConfigError, match=fragment):
            loads_model(f"kind: matmul\ndims: {{n1: 1, d: 1, n2: 1}}\nclaim: {bad!r}\n".replace("'", '"'), "f.yaml")


def test_error_messages_of_huge_values_are_short():
    text = "kind: matmul\ndims: {n1: 1, d: 1, n2: 1}\nsweep: [" + ", ".join(["-1"] * 10000) + "]\n"
    with pytest.raises(ConfigError) as error:
        loads_model(text, "f.yaml")
    assert len(str(error.value)) < 300
