"""Reading a config YAML file defensively: one reader for scenario, fleet, training and sweep files.

On top of ``yaml.safe_load`` (no Python objects) it refuses, with one short line each:

* a file that is not UTF-8 text, or larger than :data:`MAX_BYTES`;
* a key given twice in one mapping (PyYAML keeps the last one silently: a second ``battery:``
  block would replace the first);
* aliases (``*name``): a config never needs them, and nested aliases expand exponentially
  (a "billion laughs" file of a few hundred bytes becomes gigabytes);
* nesting deeper than :data:`MAX_DEPTH` (deeper input overflows the parser's recursion).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1_000_000
MAX_DEPTH = 32


class YamlConfigError(ValueError):
    """A config file cannot be read as a plain YAML document."""


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys or deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlConfigError(
                f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                "allowed in config files; write the values out"
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlConfigError(
                    f"line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML reports it below
                continue
            if duplicate:
                raise YamlConfigError(
                    f"line {line}: key {str(key)[:40]!r} is given twice in one mapping (first on "
                    f"line {seen[key]}); merge the two"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_config_yaml(path: str | Path) -> Any:
    """The parsed document of ``path`` (``None`` for an empty file), a fresh copy each call.

    Parsed documents are cached by path, size and modification time, so creating many
    environments of one scenario parses its files once (an edited file is parsed again).

    Raises
    ------
    YamlConfigError
        Naming the file and the problem: unreadable, too large, not UTF-8, not valid YAML,
        a duplicate key, an alias or too deep nesting.
    """
    p = Path(path)
    try:
        stat = p.stat()
    except OSError as exc:
        raise YamlConfigError(f"{p}: cannot read: {exc.strerror}") from None
    return copy.deepcopy(_parse(str(p), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=256)
def _parse(path: str, size: int, mtime_ns: int) -> Any:
    """Read and parse ``path`` (size and mtime only key the cache)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise YamlConfigError(f"{p}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise YamlConfigError(f"{p}: {len(raw):,} bytes; a config file is at most {MAX_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlConfigError(
            f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start}); "
            "save the file as UTF-8"
        ) from None
    loader = _ConfigLoader(text)
    try:
        return loader.get_single_data()
    except YamlConfigError as exc:
        raise YamlConfigError(f"{p}: {exc}") from None
    except yaml.YAMLError as exc:
        short = " ".join(str(exc).split())
        raise YamlConfigError(f"{p}: not valid YAML: {short[:300]}") from None
    finally:
        loader.dispose()
