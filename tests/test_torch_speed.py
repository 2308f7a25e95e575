"""Repeated blocks exported once (frontends/torch/blocks.py): the graph is the plain export's, node for
node (primitive, shape, operands, scope, attributes), so depth, size and values are the same; values
are also checked against PyTorch float64 at p = 53; the cases the rule refuses fall back to the
plain export."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from test_torch_models import EXAMPLES, close, example  # noqa: E402
from torch import nn  # noqa: E402

from tc0sim.cli.main import main  # noqa: E402
from tc0sim.errors import ConfigError  # noqa: E402
from tc0sim.frontends.torch.blocks import repeated  # noqa: E402
from tc0sim.frontends.torch.export import export_program, named_inputs  # noqa: E402
from tc0sim.frontends.torch.lower import lower, trace  # noqa: E402
from tc0sim.interp.depth import depth  # noqa: E402
from tc0sim.interp.evaluate import evaluate  # noqa: E402
from tc0sim.interp.size import size  # noqa: E402

def same_attr(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype \
            and all(x == y for x, y in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist()))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same_attr(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_attr(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def assert_same_graph(fast, plain):
    assert len(fast.nodes) == len(plain.nodes)
    for f, p in zip(fast.nodes, plain.nodes):
        assert (f.prim, f.shape, f.inputs, f.scope, f.name) == (p.prim, p.shape, p.inputs, p.scope, p.name), (f, p)
        assert list(f.attrs) == list(p.attrs) and all(same_attr(f.attrs[k], p.attrs[k]) for k in f.attrs), (f, p)
    assert fast.inputs == plain.inputs and fast.outputs == plain.outputs
    assert list(fast.defaults) == list(plain.defaults)
    assert all(np.array_equal(fast.defaults[k], plain.defaults[k]) for k in fast.defaults)


def both(module, example_inputs):
    """The fast export (asserted to have used repeated blocks) and the plain one, lowered."""
    inputs = named_inputs(module, example_inputs)
    program = export_program(module, inputs)
    assert program.blocks is not None and len(program.blocks.calls) >= 2
    return lower(program, inputs), trace(module, example_inputs, repeat=False), program


def check_values(fast, plain, module, example_inputs, names):
    inputs = {k: v.numpy() for k, v in zip(names, example_inputs)}
    got = evaluate(fast, 53, inputs=inputs, values="float64")["out"]
    assert np.array_equal(got, evaluate(plain, 53, inputs=inputs, values="float64")["out"])
    with torch.no_grad():
        close(got, module(*example_inputs).numpy())


def test_llama_three_layers_fast_equals_plain():
    model = example("llama").make_model(layers=3, width=16, heads=2, hidden=32, vocab=11).double()
    tokens = torch.tensor([[3, 10, 0, 3, 7]])
    fast, plain, program = both(model, (tokens,))
    assert len(program.blocks.calls) == 3 and len(program.blocks.bodies) == 1  # one export of a block
    assert_same_graph(fast, plain)
    assert depth(fast).critical == depth(plain).critical and size(fast).total == size(plain).total
    check_values(fast, plain, model, (tokens,), ["tokens"])


def test_vit_and_dit_fast_equal_plain():
    vit = example("vit").make_model(depth=3, width=16, heads=2, patch=4, image=8, classes=5).double()
    image = torch.randn(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fast, plain, _ = both(vit, (image,))
    assert_same_graph(fast, plain)
    check_values(fast, plain, vit, (image,), ["image"])
    dit = example("dit").make_model(depth=3, width=16, heads=2, classes=5).double()
    args = (torch.randn(1, 4, 16, dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64), torch.tensor([2]))
    fast, plain, program = both(dit, args)  # two arguments per block: the tokens and the conditioning c
    assert len(program.blocks.bodies) == 1
    assert_same_graph(fast, plain)
    check_values(fast, plain, dit, args, ["x", "t", "y"])


class Block(nn.Module):
    def __init__(self, width=8, eps=1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=eps)
        self.fc = nn.Linear(width, width)

    def forward(self, x, mask=None, scale=1):
        h = self.fc(self.norm(x)) * scale
        return x + (h if mask is None else h * mask)


class Stack(nn.Module):
    """Blocks called with a folded mask and a Python number, and once on a constant input."""

    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        n = x.shape[1]
        mask = (torch.arange(n, dtype=x.dtype) % 2).reshape(1, n, 1)  # folded: reads no input
        table = torch.arange(n * x.shape[2], dtype=x.dtype).reshape(1, n, -1) / 10
        x = x + self.blocks[0](table)  # a call on constants only: its weights stay circuit inputs
        for i, block in enumerate(self.blocks):
            x = block(x, mask, scale=2 + i % 2)
        return x


def test_constant_and_scalar_arguments_fast_equals_plain():
    torch.manual_seed(0)
    model = Stack([Block() for _ in range(4)]).double().eval()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    fast, plain, program = both(model, (x,))
    assert len(program.blocks.calls) == 5 and len(program.blocks.bodies) == 3  # (table), (x, mask, 2), (x, mask, 3)
    assert_same_graph(fast, plain)
    assert {"blocks.0.fc.weight", "blocks.3.norm.bias"} <= set(fast.inputs)
    check_values(fast, plain, model, (x,), ["x"])


class Indexed(Block):
    def __init__(self, index):
        super().__init__()
        self.index = index

    def forward(self, x, mask=None, scale=1):
        return super().forward(x) * (self.index + 1)


class Mutating(Block):
    def forward(self, x, mask=None, scale=1):
        x.mul_(2)
        return super().forward(x)


def test_which_blocks_are_repeated():
    assert set(repeated(Stack([Block() for _ in range(3)]))) == {"blocks.0", "blocks.1", "blocks.2"}
    odd = Stack([Block(), Block(eps=1e-6), Block(), Block(width=4)])  # another eps (read), another width
    assert set(repeated(odd)) == {"blocks.0", "blocks.1", "blocks.2"} and repeated(odd)["blocks.1"][1] == {("norm", "eps")}
    assert set(repeated(odd, soft=False)) == {"blocks.0", "blocks.2"}
    indexed = repeated(Stack([Indexed(i) for i in range(3)]))  # differs in a number: repeated if forward never reads it
    assert set(indexed) == {"blocks.0", "blocks.1", "blocks.2"} and indexed["blocks.1"][1] == {("", "index")}
    assert repeated(Stack([Indexed(i / 2) for i in range(3)] + [Indexed([3])])).keys() == {"blocks.0", "blocks.1", "blocks.2"}
    hooked = Stack([Block() for _ in range(3)])
    hooked.blocks[1].register_forward_hook(lambda *a: None)
    assert set(repeated(hooked)) == {"blocks.0", "blocks.2"}
    three = nn.Sequential(*odd.blocks[:3]).double().eval()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    program = export_program(three, {"input": x})  # eps is read: the equal blocks only
    assert program.blocks is not None and {c.path for c in program.blocks.calls.values()} == {"0", "2"}
    assert_same_graph(lower(program, {"input": x}), trace(three, (x,), repeat=False))
    tied = Stack([Block() for _ in range(3)])
    tied.blocks[1].fc.weight = tied.blocks[0].fc.weight
    assert repeated(tied) == {}
    shared = Block()
    assert repeated(Stack([shared, shared, Block()])) == {}
    own = Stack([Block() for _ in range(2)])
    own.blocks[0].forward = lambda x, mask=None, scale=1: x
    assert repeated(own) == {}


@pytest.mark.parametrize("make", [Mutating, Indexed], ids=["mutates its input", "reads its index"])
def test_refused_blocks_fall_back_to_the_plain_export(make):
    torch.manual_seed(0)
    model = Stack([make(i) if make is Indexed else make() for i in range(3)]).double().eval()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    inputs = named_inputs(model, (x,))
    assert export_program(model, inputs).blocks is None
    assert_same_graph(trace(model, (x,)), trace(model, (x,), repeat=False))
    assert type(model.blocks[0]) is make and type(model.blocks[0].fc) is nn.Linear  # classes restored


class Cached(nn.Module):
    """A layer index as transformers' decoder layers keep it: read only when a cache is given."""

    def __init__(self, index):
        super().__init__()
        self.inner = Block()
        self.inner.layer_idx = index

    def forward(self, x, cache=None):
        if cache is not None:
            x = x + cache[self.inner.layer_idx]
        return self.inner(x)


class Decoder(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.layers = nn.ModuleList(Cached(i) for i in range(n))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_blocks_differing_in_an_attribute_forward_does_not_read():
    torch.manual_seed(0)
    model = Decoder(3).double().eval()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    assert repeated(model)["layers.2"][1] == {("inner", "layer_idx")}
    fast, plain, program = both(model, (x,))
    assert len(program.blocks.bodies) == 1
    assert_same_graph(fast, plain)
    check_values(fast, plain, model, (x,), ["x"])


class Noisy(Block):
    def forward(self, x, mask=None, scale=1):
        return super().forward(x) + torch.rand_like(x) + torch.atan(x)


def test_unsupported_ops_in_blocks_are_reported_as_the_plain_export_reports_them():
    model = Stack([Noisy() for _ in range(3)]).eval()
    x = torch.randn(1, 3, 8)
    with pytest.raises(ConfigError) as plain:
        trace(model, (x,), repeat=False)
    with pytest.raises(ConfigError) as fast:
        trace(model, (x,))
    assert str(fast.value) == str(plain.value)
    assert "blocks.0" in str(fast.value) and "rand" in str(fast.value)


def test_meta_device_model_traces_fast():
    with torch.device("meta"):
        model = example("llama").make_model(layers=3, width=16, heads=2, hidden=32, vocab=11)
    tokens = torch.zeros(1, 4, dtype=torch.int64)
    fast, plain, _ = both(model, (tokens,))
    assert_same_graph(fast, plain)
    assert fast.defaults.keys() == {"tokens"}


META_FACTORY = f'''
import importlib.util, torch
spec = importlib.util.spec_from_file_location("meta_vit", {str(EXAMPLES / 'vit.py')!r})
vit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vit)

def make(device):
    with torch.device(device):
        return vit.make_model(depth=3, width=16, heads=2, patch=4, image=8, classes=5)
'''


def test_model_file_of_a_meta_device_module(tmp_path):
    """The kind traces a module made on the meta device on meta inputs (a conv reads the image):
    the same gates and depth as the module made on the CPU, traced the plain way."""
    (tmp_path / "meta.py").write_text(META_FACTORY)
    runner = CliRunner()
    got = {}
    for device in ("meta", "cpu"):
        model = tmp_path / f"{device}.yaml"
        model.write_text(f"kind: torch\nmodule: meta.py:make\nkwargs: {{device: {device}}}\n"
                         "inputs: {image: {shape: [1, 3, 8, 8]}}\n")
        sized = runner.invoke(main, ["size", str(model), "--format", "json"])
        assert sized.exit_code == 0, sized.output
        got[device] = json.loads(sized.stdout)["size"]
    cpu = example("vit").make_model(depth=3, width=16, heads=2, patch=4, image=8, classes=5)
    plain = trace(cpu, (torch.zeros(1, 3, 8, 8),), repeat=False)
    assert got["meta"] == got["cpu"]
    assert [c["total"] for c in got["meta"]["counts"]] == [size(plain).total]


class Layer(Block):
    """Returns a tuple as transformers' layers do: the hidden state, None, and an output nobody reads."""

    def forward(self, x, position=None, output_attentions=False):
        h = super().forward(x) + position[0] * position[1]
        return h, None, h * 3


class Layers(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.layers = nn.ModuleList(Layer() for _ in range(n))

    def forward(self, x):
        position = (x * 2, x + 1)
        for layer in self.layers:
            x, _, _ = layer(x, position=position)
        return x


def test_tuple_outputs_none_and_unread_results():
    torch.manual_seed(0)
    model = Layers(3).double().eval()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    fast, plain, program = both(model, (x,))
    assert len(program.blocks.bodies) == 1
    assert_same_graph(fast, plain)  # h * 3 is built by neither
    check_values(fast, plain, model, (x,), ["x"])
