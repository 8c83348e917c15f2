"""The leaderboard as Markdown, CSV, HTML or LaTeX: compact by default, every task on request.

Every format but CSV is laid out once as a grid of cells (rank, model, one cell per rank interval, the chosen score
columns, speed), so ``transpose`` and the best-per-column marks mean the same everywhere; each writer then escapes
every string that came from a file (``evalkit.reports.escape``) and draws the marks its own way. CSV is data: the
columns of ``Leaderboard.to_dataframe``, one value per cell. HTML is one self-contained file (inline style and a
few lines of script, nothing fetched): click a header to sort by that column; the header stays in view. LaTeX is a
booktabs table (``\\usepackage{booktabs}``) with a caption and an optional label.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from evalkit.errors import EvalkitError
from evalkit.reports.escape import escape_csv_cell, escape_html, escape_latex, escape_markdown
from evalkit.reports.leaderboard import FORMATS, UNITS, Column, Leaderboard, LeaderboardRow

DEFAULT_COLUMNS = {"md": "types", "html": "types", "latex": "types", "csv": "tasks"}
_LABEL = re.compile(r"[A-Za-z0-9:._-]{1,100}")


@dataclass(frozen=True)
class Mark:
    """A symbol each format draws its own way (``sep``: separable from the next; ``dagger``: across tasks only;
    ``approx``: speed estimated from an older run record; ``times``, ``dash``)."""

    name: str


Piece = str | Mark
MARKS = {
    "md": {"sep": " ≻", "dagger": " †", "approx": " ‡", "times": "×", "dash": "–"},
    "html": {"sep": " ≻", "dagger": " †", "approx": " ‡", "times": "×", "dash": "–"},
    "latex": {
        "sep": " $\\succ$",
        "dagger": "\\textsuperscript{\\dag}",
        "approx": "\\textsuperscript{\\ddag}",
        "times": "$\\times$",
        "dash": "--",
    },
}


@dataclass(frozen=True)
class Cell:
    parts: tuple[Piece, ...] = ()
    sort: float | None = None  # HTML sorts by this when given, else by the text
    best: bool = False
    numeric: bool = True
    ascending: bool = False  # a header whose first click sorts ascending (ranks, names)


@dataclass(frozen=True)
class Grid:
    header: list[Cell]
    rows: list[list[Cell]]
    notes: list[tuple[Piece, ...]] = field(default_factory=list)
    title: str = "Leaderboard"


def _text(text: str, *, numeric: bool = False) -> Cell:
    return Cell((text,), numeric=numeric)


def _number(value: float | None, text: str, best: float | None) -> Cell:
    if value is None:
        return Cell()
    return Cell((text,), sort=value, best=best is not None and value == best)


def _interval_cell(row: LeaderboardRow, attribute: str) -> Cell:
    interval = getattr(row, attribute)
    if interval is None:
        return Cell()
    parts: list[Piece] = [str(interval.low)]
    if interval.high != interval.low:
        parts += [Mark("dash"), str(interval.high)]
    if interval.separable_below:
        parts.append(Mark("sep"))
    return Cell(tuple(parts), sort=interval.rank + interval.low / 1e3 + interval.high / 1e6)


def _speed_text(column: Column, value: float) -> str:
    return f"{value:.0f}" if column.kind == "mib" or value >= 100 else f"{value:.1f}"


def _best(rows: Sequence[LeaderboardRow], column: Column) -> float | None:
    values = [v for row in rows if (v := column.value(row)) is not None]
    if not values or column.kind not in {"score", "rate", "mib"}:
        return None
    return min(values) if column.kind == "mib" else max(values)


def _value_cell(row: LeaderboardRow, column: Column, best: float | None, decimals: int) -> Cell:
    value = column.value(row)
    if value is None:
        return Cell()
    if column.kind == "text":
        return _text(str(value))
    if column.kind == "score":
        return _number(value, f"{100 * value:.{decimals}f}", best)
    cell = _number(value, _speed_text(column, value), best)
    estimated = column.header == "Texts/s" and row.speed is not None and row.speed.source not in (None, "recorded")
    return replace(cell, parts=(*cell.parts, Mark("approx"))) if estimated else cell


def _model_cell(row: LeaderboardRow) -> Cell:
    return Cell((row.name, Mark("dagger")) if row.published else (row.name,), numeric=False)


def build_grid(board: Leaderboard, columns: str, decimals: int) -> Grid:
    """The board as cells: rank, model, [rank intervals], scores of the column set, [speed]."""
    chosen = [*board.score_columns(columns), *board.speed_columns()]
    best = {column.header: _best(board.rows, column) for column in chosen}
    units = [(attribute, f"Rank {unit} (95%)") for attribute, unit in UNITS] if board.intervals else []
    header = [replace(_text("Rank (Borda)", numeric=True), ascending=True), replace(_text("Model"), ascending=True)]
    header += [replace(_text(name, numeric=True), ascending=True) for _, name in units]
    coverage = columns != "tasks"  # the tasks are not shown: say how many each row has
    header += [_text("Tasks", numeric=True)] if coverage else []
    header += [_text(column.header, numeric=column.kind != "text") for column in chosen]
    rows = []
    for row in board.rows:
        cells = [Cell((str(row.rank),), sort=row.rank), _model_cell(row)]
        cells += [_interval_cell(row, attribute) for attribute, _ in units]
        cells += [_coverage_cell(row, len(board.tasks))] if coverage else []
        cells += [_value_cell(row, column, best[column.header], decimals) for column in chosen]
        rows.append(cells)
    title = f"Leaderboard: {board.benchmark}" if board.benchmark else "Leaderboard"
    notes = _notes(board)
    if coverage:
        notes.insert(1, ("Tasks: how many of the tasks have a score (the Borda rank counts each of them).",))
    return Grid(header, rows, notes, title)


def _coverage_cell(row: LeaderboardRow, total: int) -> Cell:
    scored = sum(value is not None for value in row.per_task.values())
    return Cell((f"{scored}/{total}",), sort=scored)


def _notes(board: Leaderboard) -> list[tuple[Piece, ...]]:
    notes: list[tuple[Piece, ...]] = [
        (
            "Scores ",
            Mark("times"),
            "100; bold: best in the column; empty: missing (a mean with a missing task is empty).",
        )
    ]
    if board.intervals is not None:
        notes += _interval_notes(board)
    if board.speed:
        notes.append(
            (
                "Speed: encoding only, summed over the tasks that encoded texts (texts and tokens per second); peak "
                "RSS of the whole process; empty: no run record (published files) or every vector from the cache. ",
                Mark("approx"),
                ": estimated from a run record older than its throughput object.",
            )
        )
    return notes


def _interval_notes(board: Leaderboard) -> list[tuple[Piece, ...]]:
    found = board.intervals
    assert found is not None
    within, across = found.within, found.across
    notes: list[tuple[Piece, ...]] = [
        (
            f"Rank intervals: {round(100 * across.level)}% percentile intervals of the rank by Mean (Task) over "
            f"{across.resamples} bootstrap resamples (seed {across.seed}). Within tasks resamples each task's queries "
            "or pairs, the same items for every model, and ranks among themselves the models with per-item scores "
            f"on every task ({len(within.models)}); across tasks resamples the {len(across.tasks)} tasks and ranks "
            f"the models with a score on every task ({len(across.models)}).",
            Mark("sep"),
            ": separable from the model ranked next below it in that unit (the interval of their difference "
            "excludes 0).",
        )
    ]
    if found.published:
        notes.append((Mark("dagger"), " published result file: no per-item scores, so across tasks only."))
    skipped = found.published | set(across.notes)
    unranked = {model: why for model, why in within.notes.items() if model not in skipped}
    if unranked:
        listed = "; ".join(f"{model}: {why}" for model, why in sorted(unranked.items()))
        notes.append((f"Not ranked within tasks: {listed}.",))
    if across.notes:
        listed = ", ".join(sorted(across.notes))
        notes.append((f"Not ranked at all (a task without a score, so no benchmark mean): {listed}.",))
    return notes


def transpose(grid: Grid) -> Grid:
    """Models as columns and measures as rows (the best marks stay with their measure)."""
    columns = [[grid.header[j], *(row[j] for row in grid.rows)] for j in range(len(grid.header)) if j != 1]
    header = [_text("")] + [replace(row[1], numeric=True) for row in grid.rows]
    rows = [[replace(column[0], numeric=False), *column[1:]] for column in columns]
    return replace(grid, header=header, rows=rows)


def _escaped(piece: str, escape: Callable[[str], str]) -> str:
    """``escape`` makes a piece one trimmed line; the spaces that join it to the next piece are kept."""
    lead = " " if piece[:1].isspace() else ""
    return lead + escape(piece) + (" " if piece[-1:].isspace() and piece.strip() else "")


def _join(parts: Sequence[Piece], escape: Callable[[str], str], marks: dict[str, str]) -> str:
    return "".join(_escaped(p, escape) if isinstance(p, str) else marks[p.name] for p in parts)


def _markdown(grid: Grid) -> str:
    marks = MARKS["md"]

    def show(cell: Cell) -> str:
        text = _join(cell.parts, escape_markdown, marks)
        return f"**{text}**" if cell.best and text else text

    lines = [
        f"### {escape_markdown(grid.title)}",
        "",
        "| " + " | ".join(show(c) for c in grid.header) + " |",
        "| " + " | ".join("---:" if c.numeric else "---" for c in grid.header) + " |",
    ]
    lines += ["| " + " | ".join(show(c) for c in row) + " |" for row in grid.rows]
    for note in grid.notes:
        lines += ["", _join(note, escape_markdown, marks)]
    return "\n".join(lines) + "\n"


def _latex(grid: Grid, caption: str | None, label: str | None) -> str:
    marks = MARKS["latex"]

    def show(cell: Cell) -> str:
        text = _join(cell.parts, escape_latex, marks)
        return f"\\textbf{{{text}}}" if cell.best and text else text

    spec = "".join("r" if c.numeric else "l" for c in grid.header)
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{escape_latex(grid.title if caption is None else caption)}}}",
    ]
    if label is not None:
        lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(show(c) for c in grid.header) + " \\\\"]
    lines += ["\\midrule", *(" & ".join(show(c) for c in row) + " \\\\" for row in grid.rows), "\\bottomrule"]
    lines += ["\\end{tabular}", "\\par\\smallskip\\footnotesize"]
    lines += [
        _join(note, escape_latex, marks) + ("\\par" if i < len(grid.notes) - 1 else "")
        for i, note in enumerate(grid.notes)
    ]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


_SORT_SCRIPT = (
    "<script>(function(){var t=document.getElementById('leaderboard');var hs=t.tHead.rows[0].cells;"
    "function key(c){var v=c.getAttribute('data-v');return v===null?c.textContent.trim():parseFloat(v);}"
    "Array.prototype.forEach.call(hs,function(h,i){h.addEventListener('click',function(){"
    "var was=h.getAttribute('aria-sort'),up=was?was==='descending':h.getAttribute('data-first')==='asc';"
    "Array.prototype.forEach.call(hs,function(o){o.removeAttribute('aria-sort');});"
    "h.setAttribute('aria-sort',up?'ascending':'descending');var b=t.tBodies[0];"
    "var rows=Array.prototype.slice.call(b.rows);rows.sort(function(r,s){var x=key(r.cells[i]),y=key(s.cells[i]);"
    "if(x===''||y===''){return (x==='')-(y==='');}"
    "var d=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));return up?d:-d;});"
    "rows.forEach(function(r){b.appendChild(r);});});});})();</script>"
)
_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:separate;border-spacing:0;"
    "font-variant-numeric:tabular-nums}th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;"
    "white-space:nowrap}th{position:sticky;top:0;background:#f4f4f4;cursor:pointer;user-select:none}"
    "th.t,td.t{text-align:left}th[aria-sort=ascending]::after{content:' \\25B2'}"
    "th[aria-sort=descending]::after{content:' \\25BC'}p{max-width:60rem;color:#444}</style>"
)


def _html(grid: Grid) -> str:
    marks = MARKS["html"]

    def show(cell: Cell, tag: str) -> str:
        text = _join(cell.parts, escape_html, marks)
        text = f"<strong>{text}</strong>" if cell.best and text else text
        value = f' data-v="{float(cell.sort)!r}"' if cell.sort is not None and tag == "td" else ""
        first = ' data-first="asc"' if cell.ascending and tag == "th" else ""
        kind = "n" if cell.numeric else "t"
        return f'<{tag} class="{kind}"{value}{first}>{text}</{tag}>'

    header = "".join(show(c, "th") for c in grid.header)
    body = "".join("<tr>" + "".join(show(c, "td") for c in row) + "</tr>" for row in grid.rows)
    notes = "".join(f"<p>{_join(note, escape_html, marks)}</p>" for note in grid.notes)
    title = escape_html(grid.title)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>{_STYLE}</head><body>'
        f'<h1>{title}</h1><table id="leaderboard"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'
        f"{notes}{_SORT_SCRIPT}</body></html>\n"
    )


def _csv_text(kind: str, value: object, decimals: int) -> str:
    if value is None:
        return ""
    if kind == "score":
        return f"{100 * value:.{decimals}f}"  # type: ignore[operator]
    if kind == "flag":
        return "true" if value else "false"
    if kind in {"rate", "mib"}:
        return f"{value:.1f}"
    return str(value)


def _csv(board: Leaderboard, columns: str, decimals: int, flip: bool) -> str:
    chosen = board.columns(columns)
    table = [["Rank (Borda)", "Model", "Revision", *(c.header for c in chosen)]]
    for row in board.rows:
        values = [_csv_text(c.kind, c.value(row), decimals) for c in chosen]
        table.append([str(row.rank), row.model, row.revision or "", *values])
    if flip:
        table = [list(line) for line in zip(*table, strict=True)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line in table:
        writer.writerow([escape_csv_cell(text) for text in line])  # task names are headers: "=cmd|..." too
    return buffer.getvalue()


def check_label(label: str | None) -> None:
    """A LaTeX label is written as it is: letters, digits and ``:._-`` only, or a one-line refusal."""
    if label is not None and not _LABEL.fullmatch(label):
        raise EvalkitError("a label is letters, digits and ':._-' (up to 100)", field="label")


def render_board(
    board: Leaderboard,
    fmt: str,
    *,
    decimals: int = 2,
    columns: str | None = None,
    transpose_table: bool = False,
    caption: str | None = None,
    label: str | None = None,
) -> str:
    """Scores ×100 with fixed decimals, the best value of each column marked, missing cells empty. ``columns``:
    ``means``, ``types`` or ``tasks`` (default: ``types``, and every column in CSV); ``transpose_table``: models
    as columns; ``caption``/``label``: LaTeX only (the caption defaults to the title)."""
    if fmt not in FORMATS:
        raise EvalkitError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})", field="format")
    if (caption is not None or label is not None) and fmt != "latex":
        raise EvalkitError("a caption and a label are for --format latex only", field="caption")
    check_label(label)
    chosen = columns or DEFAULT_COLUMNS[fmt]
    if fmt == "csv":
        return _csv(board, chosen, decimals, transpose_table)
    grid = build_grid(board, chosen, decimals)
    if transpose_table:
        grid = transpose(grid)
    if fmt == "latex":
        return _latex(grid, caption, label)
    return _markdown(grid) if fmt == "md" else _html(grid)
