"""``tc0sim eval``'s options for the released models and intermediate values (docs/cli.md):
``--torch-seed`` (the official random stream), ``--output .png`` (the official 8-bit image) and
``--probe`` (operator scopes as extra outputs). Kept apart from the command so that it only calls them; numpy and the models are imported when called.
"""

from __future__ import annotations

from typing import Any

from tc0sim.errors import ConfigError


def official(spec: Any, what: str) -> Any:
    """The kind's entry of tc0sim.models.OFFICIAL, or the refusal naming the option."""
    from tc0sim.models import OFFICIAL

    found = OFFICIAL.get(spec.kind)
    if found is None:
        raise ConfigError(f"{what}: kind {spec.kind!r} is not a released model (only {', '.join(OFFICIAL)})")
    return found


def add_seeded(inputs: dict[str, Any], spec: Any, n: int | None, p: int, seed: int) -> None:
    """--torch-seed: the official random inputs, refusing one also given by --inputs."""
    seeded = official(spec, "--torch-seed").seeded
    if seeded is None:
        raise ConfigError(f"--torch-seed: kind {spec.kind!r} has no official random stream wired yet")
    drawn = seeded(spec.params_at(n), seed, p)
    both = sorted(set(drawn) & set(inputs))
    if both:
        raise ConfigError(f"input(s) {', '.join(both)} given by --inputs are drawn by --torch-seed; give one or the other")
    inputs.update(drawn)


def add_probes(graph: Any, patterns: tuple[str, ...], suffix: str) -> None:
    """--probe: make the last node of every outermost scope whose path (or a path suffix after '/')
    matches a pattern an output named by that path."""
    import fnmatch

    if suffix == ".png":
        raise ConfigError("--probe writes to a .json or .npz output, not a .png image")
    found: dict[str, int] = {}
    for node in graph.nodes:
        parts = node.scope_path.split("/") if node.scope_path else []
        for depth in range(1, len(parts) + 1):  # the outermost matching scope
            path = "/".join(parts[:depth])
            if any(fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(path, f"*/{g}") for g in patterns):
                found[path] = node.id  # nodes are in creation order: the last one is the scope's result
                break
    if not found:
        raise ConfigError(f"--probe {' '.join(patterns)}: no operator scope matches (scopes are paths such as "
                          "'var_release/scale2/head'; see tc0sim depth --full-path)")
    for path, nid in found.items():
        graph.outputs.setdefault(path, nid)


def write_image(spec: Any, outputs: dict[str, Any], path: str) -> None:
    """--output .png: the kind's image output in 8 bits as the official code saves it (a batch as a grid)."""
    import numpy as np

    from tc0sim.io.png import grid, write_png

    entry = official(spec, "--output .png")
    image = np.vectorize(float, otypes=[np.float64])(outputs[entry.image])
    if image.shape[-1] != 3:
        raise ConfigError(f"--output .png: output {entry.image!r} of shape {list(image.shape)} is not an RGB image")
    rgb = entry.to_bytes(image)
    write_png(path, grid(rgb) if rgb.ndim == 4 else rgb)


__all__ = ["official", "add_seeded", "add_probes", "write_image"]
