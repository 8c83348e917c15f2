"""Names that become paths: one safe component each, and never a step outside the folder they belong to.

Model names, revisions, task names, subsets and languages come from files written by others (result folders,
``model_meta.json``, task specs). Each is checked here before anything is read, created or removed under it, so
that a revision of ``../../x`` or ``/etc`` can never reach outside the output folder.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from evalkit.errors import UnsafeNameError

_MAX_COMPONENT_BYTES = 255  # the common file-system limit for one name
_SEPARATORS = frozenset("/\\")  # on any OS: a name holding one is several path components


def safe_component(
    value: object,
    *,
    what: str,
    file: str | Path | None = None,
    line: int | None = None,
    field: str | None = None,
) -> str:
    """Return ``value`` as a string if it is one harmless path component, else raise ``UnsafeNameError``.

    Refused: non-strings, the empty string, ``.`` and ``..``, separators (``/``, ``\\``), a drive prefix (``C:``),
    control characters (NUL included), surrogates, leading or trailing white space, a leading ``-`` (read as an
    option by other tools) and names over 255 bytes. Other characters (``<``, ``:``, spaces inside) are harmless on
    POSIX and appear in real model names, so they pass.
    """
    if not isinstance(value, str):
        raise UnsafeNameError(f"{what} must be a string, not {type(value).__name__}", file=file, line=line, field=field)
    problem = _problem(value)
    if problem:
        raise UnsafeNameError(f"{what} {value[:80]!r} is not a safe name: {problem}", file=file, line=line, field=field)
    return value


def _problem(value: str) -> str | None:
    if value in ("", ".", ".."):
        return "empty or a relative step"
    if any(c in _SEPARATORS for c in value):
        return "it holds a path separator"
    if len(value) >= 2 and value[1] == ":" and value[0].isascii() and value[0].isalpha():
        return "it starts like a drive ('C:')"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Cf") and c not in "\u200d" for c in value):
        return "it holds a control, format or surrogate character"
    if value != value.strip():
        return "leading or trailing white space"
    if value.startswith("-"):
        return "it starts with '-'"
    try:
        if len(value.encode("utf-8")) > _MAX_COMPONENT_BYTES:
            return f"longer than {_MAX_COMPONENT_BYTES} bytes"
    except UnicodeEncodeError:
        return "not encodable as UTF-8"
    return None


def is_safe_component(value: object) -> bool:
    """True when ``safe_component`` would accept ``value``."""
    return isinstance(value, str) and _problem(value) is None


def child(root: Path, *components: str, what: str = "name") -> Path:
    """``root / c1 / c2 ...`` after checking each component, and that the result stays under ``root``.

    The last check resolves links too: a component that is a symlink out of ``root`` is refused as well.
    """
    for component in components:
        safe_component(component, what=what)
    path = root.joinpath(*components)
    ensure_within(root, path, what=what)
    return path


def ensure_within(root: Path, path: Path, *, what: str = "path") -> Path:
    """Raise ``UnsafeNameError`` unless ``path`` (links resolved) lies inside ``root`` (links resolved)."""
    real_root = os.path.realpath(root)
    real_path = os.path.realpath(path)
    if real_path != real_root and not real_path.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafeNameError(f"{what} {str(path)!r} leads outside {str(root)!r}", file=path)
    return path
