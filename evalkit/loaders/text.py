"""The one policy for invalid Unicode in task data: refuse it, naming the file, line and field.

A lone surrogate (``"\\ud800"``, a valid JSON escape) or any code point UTF-8 cannot encode would crash a tokenizer
in the middle of a run, after earlier tasks were written; invalid UTF-8 bytes are refused where lines are decoded
(:func:`evalkit.loaders.jsonl.iter_lines`). Every loader checks its texts here, at load time, before any encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.errors import DataError


def encoding_problem(value: str) -> str | None:
    """Why ``value`` cannot be encoded as UTF-8, or ``None`` when it can."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = value[err.start]
        return f"a lone surrogate or other code point UTF-8 cannot encode ({bad!r} at position {err.start})"
    return None


def check_text(
    value: str, *, file: str | Path | None, line: int | None = None, field: str | None = None, row: int | None = None
) -> str:
    """``value`` unchanged, or a DataError when it holds a code point UTF-8 cannot encode."""
    problem = encoding_problem(value)
    if problem is not None:
        where = f"row {row}: " if row is not None else ""
        raise DataError(f"{where}invalid text: {problem}", file=file, line=line, field=field)
    return value


def check_strings(value: Any, *, file: str | Path | None, line: int | None = None) -> None:
    """Every string (keys included) anywhere in a parsed JSON value, walked without recursion (JSON may nest deep).

    The field named in the error is the path to the bad string (``answers[2]``, ``meta.title``).
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            check_text(item, file=file, line=line, field=path or None)
        elif isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and encoding_problem(key) is not None:
                    check_text(key, file=file, line=line, field=f"{path}.<key>" if path else "<key>")
            stack.extend((f"{path}.{key}" if path else str(key), child) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", item[i]) for i in reversed(range(len(item))))  # first in file order first
