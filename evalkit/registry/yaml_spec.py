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


def _to_mapping(node: yaml.MappingNode, file: Path) -> SpecMapping:
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    children: dict[str, SpecMapping] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key in values:
            raise SpecError("field given twice", file=file, line=line, field=key)
        lines[key] = line
        if isinstance(value_node, yaml.MappingNode):
            child = _to_mapping(value_node, file)
            children[key] = child
            values[key] = child.values
        else:
            values[key] = yaml.safe_load(yaml.serialize(value_node))
    return SpecMapping(file=file, values=values, lines=lines, start_line=node.start_mark.line + 1, children=children)


def read_spec_file(path: Path) -> SpecMapping:
    """Parse one YAML spec file whose top level is a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read spec file: {err}", file=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(f"invalid YAML: {problem}", file=path, line=line) from None
    if not isinstance(node, yaml.MappingNode):
        raise SpecError("a spec file must be a YAML mapping of fields", file=path, line=1)
    return _to_mapping(node, path)
