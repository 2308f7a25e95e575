"""Reading a model file: at most ``MAX_FILE_READ`` bytes, parsed by a bounded SafeLoader (no python
tags, no repeated keys, no alias bombs or deep nesting, no huge integer literals), every YAML error
turned into one ConfigError line with its line and column."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from tc0sim.errors import ConfigError
from tc0sim.limits import MAX_FILE_BYTES, MAX_YAML_INT_CHARS, MAX_YAML_NESTING, MAX_YAML_NODES
from tc0sim.modelfile.keys import from_mapping
from tc0sim.modelfile.messages import short
from tc0sim.modelfile.spec import ModelSpec

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's SafeLoader when PyYAML has it (about 5 times faster), else the pure-Python one."""


def _check_bounds(text: str) -> None:
    """Refuse, from the parser's event stream and before anything is composed or constructed, a
    document nested deeper than ``MAX_YAML_NESTING`` (composing it would hit Python's recursion
    limit), one of more than ``MAX_YAML_NODES`` nodes with every alias expanded (the "billion
    laughs" file), and an alias of a collection that contains it."""
    try:
        _count_events(yaml.parse(text, Loader=_SAFE_LOADER))
    except yaml.YAMLError as e:
        if "maximum nesting depth" not in str(getattr(e, "problem", "")):
            raise
        # libyaml's scanner has its own, larger limit and may reach it while reading ahead
        raise yaml.composer.ComposerError(
            None, None, f"collections nested more than {MAX_YAML_NESTING} levels deep", e.problem_mark
        ) from None


def _count_events(events: Any) -> None:
    sizes: dict[str, int] = {}
    open_collections: list[tuple[str | None, int]] = []
    total = 0
    for event in events:
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(open_collections) >= MAX_YAML_NESTING:
                raise _composer_error(f"collections nested more than {MAX_YAML_NESTING} levels deep", event)
            open_collections.append((event.anchor, total))
            total += 1
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, before = open_collections.pop()
            if anchor is not None:
                sizes[anchor] = total - before
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_collections):
                raise _composer_error("an alias refers to a collection that contains it", event)
            total += sizes.get(event.anchor, 1)  # an undefined alias is reported by the composer
        if total > MAX_YAML_NODES:
            raise _composer_error(f"more than {MAX_YAML_NODES:,} YAML nodes with aliases expanded", event)


def _composer_error(problem: str, event: Any) -> yaml.composer.ComposerError:
    return yaml.composer.ComposerError(None, None, problem, event.start_mark)


class _BoundedLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """SafeLoader that refuses a mapping with a repeated key (plain safe_load keeps the last one)
    and an integer literal longer than ``MAX_YAML_INT_CHARS`` characters, before converting it."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_YAML_INT_CHARS:
            raise yaml.constructor.ConstructorError(
                None, None, f"integer literal longer than {MAX_YAML_INT_CHARS} characters", node.start_mark
            )
        return super().construct_yaml_int(node)


def _construct_mapping(loader: _BoundedLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            repeated = key in seen
        except TypeError:
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"repeated key {short(key)}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """A one-line description of a YAML error with its line and column."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    context = getattr(error, "context", None)
    text = f"{context}: {problem}" if context else problem
    return " ".join(text.split()) + where


MAX_FILE_READ = 4 * MAX_FILE_BYTES
"""Most bytes read from a model file (a UTF-8 character is at most 4 bytes): a longer regular file is
refused from its size, a device or pipe (``/dev/zero``) once that many bytes have been read."""


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, at most ``MAX_FILE_READ`` of them (more: a ConfigError). Opened without
    blocking, so a FIFO with no writer reads as empty instead of waiting."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_READ:
            raise ConfigError(f"{path}: the model file is {info.st_size:,} bytes, more than the limit of {MAX_FILE_READ:,}")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= MAX_FILE_READ:
            chunk = os.read(fd, min(1 << 16, MAX_FILE_READ + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
        kind = "file" if stat.S_ISREG(info.st_mode) else "device or pipe"
        raise ConfigError(f"{path}: the model {kind} gives more than {MAX_FILE_READ:,} bytes (the limit); not read further")
    finally:
        os.close(fd)


def load_model(path: str | Path) -> ModelSpec:
    """Read and validate the model file at ``path`` (at most ``MAX_FILE_READ`` bytes; YAML, safe_load only)."""
    path = Path(path)
    try:
        text = _read_bounded(path).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a model file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read model file: {e.strerror or e}") from None
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: the model file is longer than {MAX_FILE_BYTES:,} characters")
    return loads_model(text, source=str(path))


def loads_model(text: str, source: str = "<model>") -> ModelSpec:
    """Parse and validate model-file text; ``source`` names it in error messages."""
    try:
        _check_bounds(text)
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as e:
        problem = _yaml_problem(e)
        if "could not determine a constructor" in problem:
            raise ConfigError(
                f"{source}: YAML tag not allowed (model files are plain YAML; python tags are refused): {problem}"
            ) from None
        raise ConfigError(f"{source}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {_yaml_problem(e)}") from None
    except RecursionError:  # not reached within MAX_YAML_NESTING; kept so no input gives a traceback
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    return from_mapping(data, source)
