"""Write the hand-made checkpoints of this folder (from the repository root:
``python tests/hostile/checkpoints/make.py``).

Each fits examples/mlp.yaml (weights W (2, 2) and b (2,)) but for the one thing it tests; the
values are exact in bfloat16, so the bf16 and f16 files hold the same weights as a float64 one.
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent
W = torch.tensor([[0.5, -1.25], [3.0, 2.0]])
B = torch.tensor([1.5, -0.75])


class Evil:
    """An object whose unpickling would run code (a weights-only load refuses it)."""

    def __reduce__(self):
        return (print, ("ran",))


def main() -> None:
    torch.save({"W": torch.empty(2, 2, device="meta"), "b": B}, OUT / "meta.pth")
    torch.save({"W": W.to_sparse(), "b": B}, OUT / "sparse_coo.pth")
    torch.save({"W": W.to_sparse_csr(), "b": B}, OUT / "sparse_csr.pth")
    torch.save({"W": torch.quantize_per_tensor(W, 0.25, 0, torch.qint8), "b": B}, OUT / "quantised.pth")
    torch.save({"W": W.to(torch.complex64), "b": B}, OUT / "complex.pth")
    torch.save({"W": W.to(torch.int32), "b": B}, OUT / "int.pth")
    torch.save({"W\x1b[31m\x07": W, "b": B}, OUT / "escape_key.pth")
    torch.save({"W": W, "b": B, "x": Evil()}, OUT / "pickle_object.pth")
    save_file({"W": W.to(torch.bfloat16), "b": B.to(torch.bfloat16)}, str(OUT / "bf16.safetensors"))
    save_file({"W": W.to(torch.float16), "b": B.to(torch.float16)}, str(OUT / "f16.safetensors"))
    save_file({"W": W.to(torch.complex64), "b": B}, str(OUT / "complex.safetensors"))
    save_file({"W": W.to(torch.int8), "b": B}, str(OUT / "int8.safetensors"))
    data = (OUT / "f16.safetensors").read_bytes()
    (OUT / "truncated.safetensors").write_bytes(data[:-3])
    (OUT / "huge_header.safetensors").write_bytes((10**12).to_bytes(8, "little") + b"{}")
    (OUT / "not_a_checkpoint.pth").write_bytes(b"\x00garbage" * 10)


if __name__ == "__main__":
    main()
