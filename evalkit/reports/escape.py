"""One escaping function per output format, for every string a results file (or a user) puts into a report.

Model, task and revision names come from files written by others. In every format a name must stay text: a model
named ``<script>`` renders as text, ``|`` does not end a table cell, ``=HYPERLINK(...)`` is no formula, and ESC or
BEL never reach a terminal, a file or an XML parser raw. Each function first makes the value one visible line
(:func:`visible`), then applies its format's rules; writers call the function of the format they write, on every
string that is not their own fixed text.
"""

from __future__ import annotations

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~])")
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
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CSV_FORMULA_START = frozenset("=+-@")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_JOINER = "\u200d"  # zero-width joiner: invisible, but ``@`` + joiner + name is no mention, ``http`` + joiner no link
_LIVE_MARKDOWN = re.compile(r"(?i)(@|#(?=\d)|\b(?:https?|ftp|mailto|xmpp|www)(?=[:.]))")


def visible(text: object) -> str:
    """One line with nothing invisible that acts: white space runs (newlines, tabs) become one space; a control
    character (ESC, BEL, NUL, DEL, C1), a lone surrogate, U+FFFE/U+FFFF or a bidirectional override is shown as
    its ``\\x1b``-style escape, so it can neither drive a terminal nor reorder what a reader sees."""
    flat = " ".join(str(text).split())
    return "".join(_shown(char) for char in flat)


def _shown(char: str) -> str:
    code = ord(char)
    hidden = code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF)
    return repr(char)[1:-1] if hidden or char in _BIDI_CONTROLS else char


def escape_terminal(text: object) -> str:
    """Plain text for a terminal (``evalkit diff``'s table, messages)."""
    return visible(text)


def escape_html(text: object) -> str:
    """HTML text and attribute values (also inline SVG): entities for ``< > & " '``."""
    return html.escape(visible(text), quote=True)


def escape_markdown(text: object) -> str:
    """Markdown (GitHub-flavoured, tables included): HTML entities first, then every Markdown control character.

    GitHub renders raw HTML inside Markdown, so ``<`` and ``&`` become entities; ``|`` would end a table cell; an
    ``_`` between two letters or digits cannot start emphasis and stays as it is (``ndcg_at_10``). In a
    pull-request comment ``@name`` would notify someone, ``#12`` link an issue and ``https://`` or ``www.`` make a
    live link: a zero-width joiner after ``@``/``#`` and before the scheme's ``:``/``.`` keeps them inert text.
    """
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(visible(text), quote=False))
    escaped = _escape_underscores(escaped)
    return _LIVE_MARKDOWN.sub(lambda m: m.group(1) + _JOINER, escaped)


def _escape_underscores(text: str) -> str:
    out = []
    for i, char in enumerate(text):
        inside_word = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        out.append(char if char != "_" or inside_word else "\\_")
    return "".join(out)


def escape_latex(text: object) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in visible(text))


def escape_csv_cell(text: object) -> str:
    """Neutralise spreadsheet formulas: a cell starting with ``= + - @`` runs as one in Excel and LibreOffice, so
    it gets a leading ``'`` unless it is a plain number. Apply to every cell, header cells (task names) included."""
    value = visible(text)
    if value[:1] in _CSV_FORMULA_START and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def escape_xml(text: object) -> str:
    """Text or an attribute value for an XML writer (ElementTree adds the entities): characters XML 1.0 forbids
    (every C0 control but tab and newline) would make the file ill-formed, so they are shown as escapes."""
    return visible(text)
