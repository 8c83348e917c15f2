"""Strict YAML reading for spec files: every value keeps the line it came from, unknown fields are errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evalkit.errors import SpecError


@dataclass(frozen=True)
class SpecMapping:
    """A YAML mapping with the line number of each key, for errors that point at the right line."""

    file: Path
    values: dict[str, Any]
    lines: dict[str, int]
    start_line: int
    children: dict[str, SpecMapping] = field(default_factory=dict)

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.start_line)

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(message, file=self.file, line=self.line_of(key), field=key)

    def reject_unknown(self, allowed: set[str]) -> None:
        for key in self.values:
            if key not in allowed:
                raise self.error(key, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        if key not in self.values:
            if required:
                raise SpecError("required field is missing", file=self.file, line=self.start_line, field=key)
            return default
        value = self.values[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(key, f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def get_str_list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(key, (list, str), None)
        if value is None:
            return default
        items = [value] if isinstance(value, str) else value
        if not all(isinstance(item, str) and item for item in items):
            raise self.error(key, "expected a list of non-empty strings")
        return tuple(items)

    def child(self, key: str) -> SpecMapping | None:
        """The nested mapping under ``key``, or ``None`` when the key is absent."""
        if key not in self.values:
            return None
        node = self.children.get(key)
        if node is None:
            raise self.error(key, "expected a mapping")
        return node


_MAX_NODES = 100_000
"""Nodes a spec may hold with every alias expanded: far above any real spec, far below a "billion laughs"."""


def _check_expansion(root: yaml.Node, file: Path) -> None:
    """Refuse an alias that refers to itself (``&a [*a]``, which never ends) or expands exponentially."""
    stack: list[yaml.Node] = [root]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > _MAX_NODES:
            line = node.start_mark.line + 1
            raise SpecError("aliases refer to themselves or expand too far", file=file, line=line)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)


def _to_mapping(node: yaml.MappingNode, file: Path) -> SpecMapping:
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    children: dict[str, SpecMapping] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise SpecError("a field name must be a plain scalar, not a list or mapping", file=file, line=line)
        key = _checked_text(key_node.value, file, line, None)
        if key in values:
            raise SpecError("field given twice", file=file, line=line, field=key)
        lines[key] = line
        if isinstance(value_node, yaml.MappingNode):
            child = _to_mapping(value_node, file)
            children[key] = child
            values[key] = child.values
        else:
            values[key] = _scalar_or_list(value_node, file, line, key)
    return SpecMapping(file=file, values=values, lines=lines, start_line=node.start_mark.line + 1, children=children)


def _scalar_or_list(node: yaml.Node, file: Path, line: int, key: str) -> Any:
    """The plain value of a non-mapping node with the safe loader; an unsafe tag (``!!python/object``), a bad
    timestamp or a text UTF-8 cannot encode is a SpecError naming the field."""
    try:
        value = yaml.safe_load(yaml.serialize(node))
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecError(f"invalid value: {problem}", file=file, line=line, field=key) from None
    except (ValueError, OverflowError) as err:  # a timestamp-looking value that is no date (2001-02-30)
        raise SpecError(f"invalid value: {err}", file=file, line=line, field=key) from None
    stack = [value]
    while stack:  # every text inside, however nested
        item = stack.pop()
        if isinstance(item, str):
            _checked_text(item, file, line, key)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def _checked_text(text: str, file: Path, line: int, key: str | None) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        problem = "a lone surrogate or other code point UTF-8 cannot encode"
        raise SpecError(problem, file=file, line=line, field=key) from None
    return text


def read_spec_file(path: Path) -> SpecMapping:
    """Parse one YAML spec file whose top level is a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read spec file: {err}", file=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if not isinstance(node, yaml.MappingNode):
            raise SpecError("a spec file must be a YAML mapping of fields", file=path, line=1)
        _check_expansion(node, path)
        return _to_mapping(node, path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(f"invalid YAML: {problem}", file=path, line=line) from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=path) from None
