"""Whole models through the torch front end: a ViT block and a LLaMA-style decoder traced, depth
exact (derived by hand from docs/torch.md's rules), sizes counted independently, evaluation
against PyTorch float64 at p = 53; the model-file kind from the CLI; unsupported ops listed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from tc0sim.cli.main import main  # noqa: E402
from tc0sim.errors import ConfigError  # noqa: E402
from tc0sim.frontends.torch import trace  # noqa: E402
from tc0sim.interp.depth import depth  # noqa: E402
from tc0sim.interp.evaluate import evaluate  # noqa: E402
from tc0sim.interp.size import size  # noqa: E402
from tc0sim.ir.vectors import vec  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "torch"


def example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * float(np.abs(want).max()))


def test_vit_block_depth_size_and_values():
    n, c = 5, 32
    block = example("vit").make_block(width=c, heads=4).double()
    x = torch.randn(1, n, c, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    graph = trace(block, (x,))
    result = depth(graph)
    # per branch: layer norm with affine 8 d_std + 2 d_sum + d_sqrt; linear d_std + d_sum;
    # attention 4 d_std + 2 d_sum + d_exp; exact GELU 3 d_std + d_erf; each residual add d_std
    assert result.exact and result.critical == [vec(d_std=29, d_sum=10, d_exp=1, d_sqrt=2, d_erf=1)]
    by_operator = size(graph).by_operator
    assert by_operator["attn.qkv/linear"] == n * 3 * c * (c + 1)  # n·3c dot products: c products, one ⊕
    assert by_operator["fc1/linear"] == n * 4 * c * (c + 1)
    assert by_operator["attn/sdpa"] == 4 * (n * n * 8 + n * n + n * n + n * n + n * n * 8 + n * 8 + n * 8 + n)
    out = evaluate(graph, 53, inputs={"x": x.numpy()}, values="float64")["out"]
    with torch.no_grad():
        close(out, block(x).numpy())


def test_llama_decoder_values_and_scopes():
    model = example("llama").make_model(layers=2, width=16, heads=2, hidden=32, vocab=11).double()
    tokens = torch.tensor([[3, 10, 0, 3, 7, 1]])
    graph = trace(model, (tokens,))
    assert depth(graph).exact
    by_operator = size(graph).by_operator
    assert by_operator["layers.1.feed_forward.w1/matmul"] == 6 * 32 * 16 + 6 * 32  # products, then one ⊕ per output
    assert "tok_embeddings" in by_operator and "layers.0.attention" in by_operator
    assert {"tok_embeddings.weight", "layers.1.feed_forward.w2.weight", "tokens"} <= set(graph.inputs)
    out = evaluate(graph, 53, inputs={"tokens": tokens.numpy()}, values="float64")["out"]
    with torch.no_grad():
        close(out, model(tokens).numpy())


class Unsupported(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x):
        noise = torch.randn(4)
        return torch.atan(self.proj(x)) + torch.atan(x) + torch.fmod(x, 0.3) + noise


def test_every_unsupported_op_is_listed_at_once():
    with pytest.raises(ConfigError) as info:
        trace(Unsupported(), (torch.zeros(2, 4),))
    message = str(info.value)
    assert "aten.atan.default ×2 in (top)" in message and "aten.fmod.Scalar ×1" in message
    assert "random ops are not lowered" in message and "aten.randn.default ×1" in message
    assert "\n" not in message


class DataDependent(torch.nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


def test_data_dependent_control_flow_gets_torch_exports_message():
    with pytest.raises(ConfigError, match=r"^torch\.export of DataDependent failed: .*") as info:
        trace(DataDependent(), (torch.zeros(3),))
    assert "\n" not in str(info.value)


def write(tmp_path, text, name="model.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MODULE_FILE = '''
import torch

class Net(torch.nn.Module):
    def __init__(self, width, bad):
        super().__init__()
        self.fc = torch.nn.Linear(width, width)
        self.bad = bad

    def forward(self, x):
        y = torch.sigmoid(self.fc(x))
        return torch.atan(y) if self.bad else y

def make(width=4, bad=False):
    torch.manual_seed(0)
    return Net(width, bad)
'''


def test_model_file_kind_torch_from_the_cli(tmp_path):
    (tmp_path / "net.py").write_text(MODULE_FILE, encoding="utf-8")
    model = write(tmp_path, "kind: torch\nmodule: net.py:make\nkwargs: {width: 4}\n"
                            "inputs: {x: {shape: [m, 4], dtype: float64}}\ndims: {m: n}\nn: 3\nprecision: 53\n")
    runner = CliRunner()
    depth_run = runner.invoke(main, ["depth", str(model), "--format", "json"])
    assert depth_run.exit_code == 0, depth_run.output
    critical = json.loads(depth_run.stdout)["depth"]["critical"]
    assert [{s: c for s, c in v.items() if c} for v in critical] == [{"d_std": 3, "d_sum": 1, "d_exp": 1}]
    sized = runner.invoke(main, ["size", str(model), "--n", "2,3,4", "--format", "json"])
    assert sized.exit_code == 0 and json.loads(sized.stdout)["size"]["verified"]
    x = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    np.savez(tmp_path / "in.npz", x=x)
    out = tmp_path / "out.npz"
    evaluated = runner.invoke(main, ["eval", str(model), "--inputs", str(tmp_path / "in.npz"), "--output", str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    net = importlib.util.module_from_spec(spec := importlib.util.spec_from_file_location("net_check", tmp_path / "net.py"))
    spec.loader.exec_module(net)
    reference = net.make(4).double()  # without --weights the module's own parameters are the weights
    with torch.no_grad():
        close(np.load(out)["out"], reference(torch.tensor(x)).numpy())
        for p in reference.parameters():
            p.mul_(-3)
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    weighted = runner.invoke(main, ["eval", str(model), "--inputs", str(tmp_path / "in.npz"), "--output", str(out),
                                    "--weights", str(tmp_path / "w.pt")])
    assert weighted.exit_code == 0, weighted.output
    with torch.no_grad():
        close(np.load(out)["out"], reference(torch.tensor(x)).numpy())


def test_an_unsupported_op_from_the_cli_is_one_error_line_and_exit_2(tmp_path):
    (tmp_path / "net.py").write_text(MODULE_FILE, encoding="utf-8")
    model = write(tmp_path, "kind: torch\nmodule: net.py:make\nkwargs: {bad: true}\ninputs: {x: {shape: [2, 4]}}\nprecision: 24\n")
    result = CliRunner().invoke(main, ["depth", str(model)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "aten.atan.default ×1" in lines[0]
    missing = write(tmp_path, "kind: torch\nmodule: nowhere.py:make\ninputs: {x: {shape: [2]}}\n", "missing.yaml")
    result = CliRunner().invoke(main, ["depth", str(missing)])
    assert result.exit_code == 2 and "nowhere.py does not exist" in result.output


@pytest.mark.parametrize("name", ["dit", "mamba"])
def test_dit_and_mamba_examples_agree_with_torch(name):
    model = example(name).make_model().double()
    g = torch.Generator().manual_seed(2)
    inputs = {"dit": (torch.randn(1, 5, 32, generator=g, dtype=torch.float64), torch.tensor([0.37], dtype=torch.float64),
                      torch.tensor([3])),
              "mamba": (torch.randn(1, 5, 16, generator=g, dtype=torch.float64),)}[name]
    graph = trace(model, inputs)
    result = depth(graph)
    assert result.exact
    names = [n for n in graph.inputs if graph.node(graph.inputs[n]).attrs.get("role") == "input"]
    out = evaluate(graph, 53, inputs={n: t.numpy() for n, t in zip(names, inputs)}, values="float64")["out"]
    with torch.no_grad():
        close(out, model(*inputs).numpy())
    prims = size(graph).by_primitive
    assert ("sin" in prims and "cos" in prims) if name == "dit" else "log" in prims


def test_a_module_on_the_meta_device_traces_for_depth_and_size():
    """Shapes only (no weight values): folded tables are computed on the CPU, weights have no defaults."""
    with torch.device("meta"):
        model = example("llama").Llama(layers=1, width=64, heads=4, hidden=96, vocab=100).eval()
    graph = trace(model, (torch.zeros(1, 6, dtype=torch.int64, device="meta"),))
    cpu = example("llama").make_model(layers=1, width=64, heads=4, hidden=96, vocab=100)
    assert depth(graph).critical == depth(trace(cpu, (torch.zeros(1, 6, dtype=torch.int64),))).critical
    assert not graph.defaults


def test_the_tests_own_var_and_flowar_blocks_trace_and_agree_with_torch():
    """The float64 VAR transformer block (tests/reference_var.py: AdaLN, l2-normalised q/k attention,
    tanh-GELU) and FlowAR's flow block (tests/reference_flowar_release.py: RMSNorm, rotary, SwiGLU)."""
    import reference_flowar_release as RF
    import reference_var as RV

    g = torch.Generator().manual_seed(3)
    rand = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    var_block = RV.Block(16, 2, 32, False).double()
    RV.randomize(var_block, 1)
    flow_block = RF.BlockV1(16, 2).double()
    cases = [(var_block, (rand(1, 5, 16), rand(1, 16))), (flow_block, (rand(1, 4, 16), rand(1, 1, 16), rand(1, 4, 16), rand(1, 4, 16)))]
    for block, inputs in cases:
        graph = trace(block, inputs)
        if hasattr(block, "attn") and isinstance(getattr(block.attn, "cache", None), list):
            block.attn.cache.clear()  # the trace ran forward once
        assert depth(graph).exact
        names = [n for n in graph.inputs if graph.node(graph.inputs[n]).attrs.get("role") == "input"]
        out = evaluate(graph, 53, inputs={n: t.numpy() for n, t in zip(names, inputs)}, values="float64")["out"]
        with torch.no_grad():
            close(out, block(*inputs).numpy())


@pytest.mark.parametrize(
    "body,words",
    [
        ("module: 3\ninputs: {x: {shape: [2]}}", "param 'module' must be"),
        ("module: net.py:make\ninputs: [1, 2]", "param 'inputs' must map"),
        ("module: net.py:make\nkwargs: x\ninputs: {x: {shape: [2, 4]}}", "param 'kwargs' must be a mapping"),
        ("module: net.py:make\ndims: {1a: 3}\ninputs: {x: {shape: [2, 4]}}", "a dim name must be an identifier"),
        ("module: net.py:nothing\ninputs: {x: {shape: [2, 4]}}", "has no callable 'nothing'"),
        ("module: net.py:make\nkwargs: {depth: 2}\ninputs: {x: {shape: [2, 4]}}", "make(**kwargs) failed: TypeError"),
        ("module: net.py:make\ninputs: {x: {shape: [m, 4]}}", "inputs.x.shape[0]: unknown name 'm'"),
        ("module: net.py:make\ninputs: {x: {shape: [2, 4], dtype: complex}}", "inputs.x.dtype: expected one of"),
        ("module: net.py:make\ninputs: {y: {shape: [2, 4]}}", "inputs.y: Net.forward takes x"),
        ("module: net.py:make\ninputs: {x: {shape: [2, 5]}}", "torch.export of Net failed"),
        ("module: no_such_package.module:make\ninputs: {x: {shape: [2]}}", "No module named 'no_such_package'"),
    ],
)
def test_a_bad_torch_model_file_is_one_error_line_and_exit_2(tmp_path, body, words):
    (tmp_path / "net.py").write_text(MODULE_FILE, encoding="utf-8")
    model = write(tmp_path, f"kind: torch\n{body}\nprecision: 24\n")
    result = CliRunner().invoke(main, ["depth", str(model)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.output


def test_a_program_exported_once_with_symbolic_dims_lowers_like_a_trace_at_each_size():
    from tc0sim.frontends.torch.kind import symbolic_axes
    from tc0sim.modelfile import load_model

    spec = load_model(EXAMPLES / "llama.yaml")
    assert symbolic_axes(spec.params["inputs"], spec.dims_at(5)) == {"tokens": {1: "t"}}
    model = example("llama").make_model(**spec.params["kwargs"])
    for n in (3, 6):
        built = spec.build(n)
        traced = trace(model, (torch.zeros(1, n, dtype=torch.int64),))
        assert size(built).as_dict() == size(traced).as_dict()
        assert depth(built).critical == depth(traced).critical


def test_trace_with_symbolic_dims_and_a_module_that_specialises_them():
    block = example("vit").make_block(width=16, heads=2)
    x = torch.zeros(1, 5, 16)
    assert size(trace(block, (x,), dims={"x": {1: "n"}})).total == size(trace(block, (x,))).total

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return x.reshape(5, -1)

    with pytest.raises(ConfigError, match="torch.export of Fixed failed"):
        trace(Fixed(), (torch.zeros(1, 5, 3),), dims={"x": {1: "n"}})


CNN_FILE = '''
import torch

def make():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU()).eval()
'''


def test_a_checkpoint_with_batch_norm_counters_binds_with_weights(tmp_path):
    (tmp_path / "cnn.py").write_text(CNN_FILE, encoding="utf-8")
    model = write(tmp_path, "kind: torch\nmodule: cnn.py:make\ninputs: {input: {shape: [1, 2, 4, 4]}}\nprecision: 53\n")
    net = importlib.util.module_from_spec(spec := importlib.util.spec_from_file_location("cnn_check", tmp_path / "cnn.py"))
    spec.loader.exec_module(net)
    reference = net.make().double()
    with torch.no_grad():
        reference[1].running_mean.uniform_(-1, 1)
        reference[1].running_var.uniform_(0.5, 2)
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    x = np.linspace(-1, 1, 32).reshape(1, 2, 4, 4)
    np.savez(tmp_path / "in.npz", input=x)
    out = tmp_path / "out.npz"
    result = CliRunner().invoke(main, ["eval", str(model), "--inputs", str(tmp_path / "in.npz"), "--output", str(out),
                                       "--weights", str(tmp_path / "w.pt")])
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        close(np.load(out)["out"], reference(torch.tensor(x)).numpy())


TORCH_NN = {
    "transformer_encoder": (lambda: torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True), [(1, 5, 16)]),
    "transformer_decoder": (lambda: torch.nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, activation="gelu",
                                                                     norm_first=True, batch_first=True), [(1, 5, 16), (1, 4, 16)]),
    "lstm": (lambda: torch.nn.LSTM(4, 6, batch_first=True), [(1, 3, 4)]),
    "gru_cell": (lambda: torch.nn.GRUCell(4, 6), [(2, 4)]),
    "conv_transpose": (lambda: torch.nn.ConvTranspose2d(2, 3, 2, stride=2), [(1, 2, 3, 3)]),
    "instance_norm": (lambda: torch.nn.InstanceNorm2d(3, affine=True), [(1, 3, 4, 4)]),
    "pixel_shuffle_pool": (lambda: torch.nn.Sequential(torch.nn.PixelShuffle(2), torch.nn.AdaptiveAvgPool2d(1)), [(1, 8, 3, 3)]),
}


@pytest.mark.parametrize("name", sorted(TORCH_NN))
def test_torch_nn_modules_trace_and_agree_with_torch(name):
    """PyTorch's own module code (not written for tc0sim), traced and evaluated at p = 53."""
    make, shapes = TORCH_NN[name]
    torch.manual_seed(0)
    module = make().double().eval()
    g = torch.Generator().manual_seed(4)
    inputs = [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]
    graph = trace(module, tuple(inputs))
    names = [n for n in graph.inputs if graph.node(graph.inputs[n]).attrs.get("role") == "input"]
    result = evaluate(graph, 53, inputs={n: t.numpy() for n, t in zip(names, inputs)}, values="float64")
    with torch.no_grad():
        want = module(*inputs)
    want = want[0] if isinstance(want, tuple) else want
    close(result["out" if "out" in result else "out0"], want.numpy())
