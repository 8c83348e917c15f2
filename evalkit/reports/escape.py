"""Escaping for every string a results file puts into a report: a model named ``<script>`` must render as text."""

from __future__ import annotations

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def escape_html(text: object) -> str:
    return html.escape(str(text), quote=True)


def escape_markdown(text: object) -> str:
    """Markdown (GitHub-flavoured, tables included): HTML entities first, then every Markdown control character.

    GitHub renders raw HTML inside Markdown, so ``<`` and ``&`` become entities; ``|`` would end a table cell.
    Newlines become spaces: one value is one cell.
    """
    flat = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def escape_latex(text: object) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in " ".join(str(text).split()))


def escape_csv_cell(text: object) -> str:
    """Neutralise spreadsheet formulas (a cell starting with = + - @ runs as one in Excel and LibreOffice)."""
    value = str(text)
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} and not _is_number(value) else value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
