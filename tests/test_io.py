"""Inputs and checkpoints read as a library (``tc0sim.io``): .npz archives checked from each
member's header, and checkpoint tensors bound to a graph's weight inputs by name.

The graph is ``examples/mlp.yaml`` (inputs X (4, 2), weights W (2, 2) and b (2,)); the expected
arrays are the ones written here, compared exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tc0sim.errors import ConfigError
from tc0sim.io import bind_weights, read_archive, read_inputs
from tc0sim.modelfile import load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():
    return load_model(ROOT / "examples" / "mlp.yaml").build()


def test_read_inputs_returns_the_arrays_by_name(tmp_path, graph):
    x = np.arange(8.0).reshape(4, 2) / 3
    np.savez(tmp_path / "in.npz", X=x, b=np.array([1, -2]))
    arrays = read_inputs(str(tmp_path / "in.npz"), graph)
    assert set(arrays) == {"X", "b"}
    assert np.array_equal(arrays["X"], x) and arrays["b"].tolist() == [1, -2]


@pytest.mark.parametrize(
    "arrays,fragment",
    [
        ({"Z": np.ones(2)}, "unknown input 'Z'; the model's inputs are X, W, b"),
        ({"X": np.ones((2, 4))}, "input 'X' has shape (2, 4), expected (4, 2)"),
        ({"W": np.array([["a", "b"], ["c", "d"]])}, "expected real numbers"),
        ({"b": np.array([1.0, np.inf])}, "input 'b' has a value that is not finite"),
    ],
)
def test_read_inputs_refuses_what_does_not_fit(tmp_path, graph, arrays, fragment):
    path = tmp_path / "in.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError) as error:
        read_inputs(str(path), graph)
    assert str(error.value).startswith(f"--inputs {path}: ") and fragment in str(error.value)


def test_read_inputs_refuses_a_missing_file_and_a_single_array(tmp_path, graph):
    with pytest.raises(ConfigError, match="no such file"):
        read_inputs(str(tmp_path / "absent.npz"), graph)
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(ConfigError, match="got a single array"):
        read_inputs(str(tmp_path / "one.npy"), graph)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ConfigError, match="not a readable .npz archive"):
        read_inputs(str(tmp_path / "junk.npz"), graph)


def test_read_archive_takes_any_real_arrays_and_names_the_option(tmp_path):
    np.savez(tmp_path / "w.npz", W_Q=np.eye(2), k=np.arange(3))
    arrays = read_archive(str(tmp_path / "w.npz"), "--weights")
    assert np.array_equal(arrays["W_Q"], np.eye(2)) and arrays["k"].tolist() == [0, 1, 2]
    np.savez(tmp_path / "s.npz", s=np.array(["x"]))
    with pytest.raises(ConfigError, match=r"^--weights .*s\.npz: array 's' .* must hold real numbers"):
        read_archive(str(tmp_path / "s.npz"), "--weights")


def _safetensors(path: Path, tensors: dict[str, np.ndarray]) -> str:
    from safetensors.numpy import save_file

    save_file(tensors, str(path))
    return str(path)


def test_bind_weights_from_safetensors_with_a_prefix(tmp_path, graph):
    w = np.array([[0.5, -1.25], [3.0, 2.0]], dtype=np.float32)
    b = np.array([1.5, -0.75], dtype=np.float16)
    path = _safetensors(tmp_path / "mlp.safetensors", {"W": w, "b": b})
    bound = bind_weights(graph, [path])
    assert set(bound) == {"W", "b"}
    # float32 and float16 values convert to float64 exactly
    assert bound["W"].dtype == np.float64 and bound["W"].tolist() == [[0.5, -1.25], [3.0, 2.0]]
    assert bound["b"].tolist() == [1.5, -0.75]
    w_only = _safetensors(tmp_path / "w.safetensors", {"W": w})
    b_only = _safetensors(tmp_path / "b.safetensors", {"b": b})
    assert set(bind_weights(graph, [w_only, b_only])) == {"W", "b"}
    with pytest.raises(ConfigError, match=r"not read by the circuit: m\.W"):
        bind_weights(graph, [f"m.={w_only}", b_only])


def test_bind_weights_reports_every_problem_in_one_error(tmp_path, graph):
    path = _safetensors(tmp_path / "bad.safetensors", {"W": np.ones((3, 3), np.float32), "extra.weight": np.ones(1, np.float32)})
    with pytest.raises(ConfigError) as error:
        bind_weights(graph, [path])
    message = str(error.value)
    assert "2 missing: W, b" in message  # a tensor of the wrong shape does not supply its input
    assert "1 not read by the circuit: extra.weight" in message
    assert "1 with the wrong shape: W [3, 3] (expected [2, 2])" in message
    fits = _safetensors(tmp_path / "fits.safetensors", {"W": np.eye(2, dtype=np.float32), "extra.weight": np.ones(1, np.float32)})
    bound = bind_weights(graph, [fits], ignored=["extra.*"], supplied=["b"])
    assert set(bound) == {"W"} and bound["W"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
