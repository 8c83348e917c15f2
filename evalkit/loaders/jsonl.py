"""Line-by-line reading of ``.jsonl`` / ``.jsonl.gz`` files, with errors naming the file, line and field.

Benchmark files are large and hand-edited copies are common, so a bad line must be reported exactly rather
than surface later as a ``KeyError`` deep inside an evaluator.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from evalkit.errors import DataError, MissingDataError
from evalkit.loaders.text import check_strings

_TYPE_NAMES = {dict: "object", list: "array", str: "string", int: "integer", float: "number", bool: "boolean"}


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, decompressing on the fly when the name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line (1-based, newline stripped), decoding UTF-8 per line.

    Decoding per line (not with a text-mode file) is what lets a bad byte be reported with its line number.
    """
    line_no = 0
    try:
        with open_binary(path) as handle:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(
                        f"not valid UTF-8 ({err.reason} at byte {err.start})", file=path, line=line_no
                    ) from None
                if line_no == 1:
                    text = text.removeprefix("\ufeff")
                yield line_no, text.rstrip("\r\n")
    except (gzip.BadGzipFile, EOFError, OSError, zlib.error) as err:  # zlib.error: damaged deflate data
        if isinstance(err, FileNotFoundError):
            raise MissingDataError("no such file", file=path) from None
        where = line_no + 1 if line_no else None
        raise DataError(f"cannot read the file ({err})", file=path, line=where) from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSON-lines file.

    Raises DataError (with file and line) for a line that is not valid JSON or is not a JSON object, and (with
    the field) for a string holding a lone surrogate: the raw line is valid UTF-8, so one can only come from a
    ``\\u`` escape, and only lines holding one are searched.
    """
    for line_no, text in iter_lines(path):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            message = f"invalid JSON ({err.msg} at column {err.colno})"
            raise DataError(message, file=path, line=line_no) from None
        except RecursionError:
            raise DataError("invalid JSON (nested too deeply)", file=path, line=line_no) from None
        except ValueError as err:  # e.g. an integer over Python's 4300-digit limit
            raise DataError(f"invalid JSON ({str(err).splitlines()[0][:160]})", file=path, line=line_no) from None
        if not isinstance(value, dict):
            raise DataError(f"expected a JSON object, got {type_name(value)}", file=path, line=line_no)
        if "\\u" in text:
            check_strings(value, file=path, line=line_no)
        yield line_no, value


def type_name(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _wrong_type(record: dict[str, Any], name: str, expected: str, path: Path, line: int) -> DataError:
    return DataError(f"expected {expected}, got {type_name(record[name])}", file=path, line=line, field=name)


def _require(record: dict[str, Any], name: str, path: Path, line: int) -> Any:
    if name not in record:
        raise DataError("required field is missing", file=path, line=line, field=name)
    return record[name]


def get_id(record: dict[str, Any], name: str, *, path: Path, line: int) -> str:
    """A required identifier. Integers are accepted and turned into strings, as mteb casts ids to strings."""
    value = _require(record, name, path, line)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _wrong_type(record, name, "a string or integer id", path, line)


def get_str(record: dict[str, Any], name: str, *, path: Path, line: int, optional: bool = False) -> str:
    """A string field; with ``optional``, a missing or null field reads as ``""`` (BEIR's missing title)."""
    if optional and record.get(name) is None:
        return ""
    value = _require(record, name, path, line)
    if not isinstance(value, str):
        raise _wrong_type(record, name, "a string", path, line)
    return value


def get_number(record: dict[str, Any], name: str, *, path: Path, line: int) -> float:
    """A required finite number (Python's json accepts ``NaN``, which would silently poison a correlation)."""
    value = _require(record, name, path, line)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type(record, name, "a number", path, line)
    if not math.isfinite(value):
        raise DataError(f"expected a finite number, got {value}", file=path, line=line, field=name)
    return float(value)
