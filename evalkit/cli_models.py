"""``evalkit models``: list and search the model registry, and show one model's resolved settings.

Thin: :func:`evalkit.registry.catalog.list_models` and :func:`evalkit.registry.catalog.describe_model` do the work;
this module prints. Exit codes: 0 fine; 2 an unknown model or type (with a did-you-mean), or a hub id that is not
downloaded while the machine is offline. Listing imports mteb's registry but never torch or transformers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evalkit.reports.escape import escape_terminal

if TYPE_CHECKING:
    from evalkit.registry.catalog import CatalogEntry, ModelDescription

_REASON_WIDTH = 100


def _table_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    rows = [[escape_terminal(c) for c in row] for row in rows]  # names from registries reach the terminal inert
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines]


def _row(entry: CatalogEntry) -> tuple[str, ...]:
    verdict = "yes" if entry.runs else f"no: {entry.reason}"
    if len(verdict) > _REASON_WIDTH:
        verdict = verdict[: _REASON_WIDTH - 3] + "..."
    return (entry.name, entry.kind, entry.source, (entry.revision or "-")[:10], verdict)


def cmd_models(args: argparse.Namespace) -> int:
    if getattr(args, "models_command", None) == "show":
        return cmd_models_show(args)
    from evalkit.registry.catalog import list_models

    entries = list_models(search=args.search, kind=args.type)
    if args.json:
        print(json.dumps([entry.to_json() for entry in entries], indent=1))  # ASCII-escaped: nothing acts on a terminal
        return 0
    header = ("model", "type", "source", "revision", "evalkit runs it")
    print("\n".join(_table_lines(header, [_row(entry) for entry in entries])))
    running = sum(entry.runs for entry in entries)
    print(f"\n{len(entries)} models: {running} run, {len(entries) - running} refused")
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    from evalkit.registry.catalog import describe_model

    description = describe_model(args.name, task=args.task)
    if args.json:
        print(json.dumps(description.to_json(), indent=1))  # ASCII-escaped: nothing acts on a terminal
        return 0
    print(_format_description(description))
    return 0


_LIST_ITEMS = 8


def _value_lines(value: Any) -> list[str]:
    """A setting's value as terminal-safe text: strings as ``repr`` (exact, escapes included, spaces kept), a
    mapping one key per line (below the setting), a long list shortened."""
    if isinstance(value, dict):
        return ["{}"] if not value else ["", *(f"  {key!r}: {text!r}" for key, text in value.items())]
    if isinstance(value, (list, tuple)):
        shown = ", ".join(escape_terminal(item) for item in value[:_LIST_ITEMS])
        more = f" (+{len(value) - _LIST_ITEMS} more)" if len(value) > _LIST_ITEMS else ""
        return [f"[{shown}]{more}"]
    return [repr(value) if isinstance(value, str) else escape_terminal(value)]


def _format_description(description: ModelDescription) -> str:
    """Text for a terminal: names and origins through ``escape_terminal``, prompt texts as ``repr`` (exact)."""
    name, kind, source = (escape_terminal(x) for x in (description.name, description.kind, description.source))
    folder = escape_terminal(
        description.folder
        or ("none (no weights here)" if description.weightless else "not downloaded (its config was not read)")
    )
    lines = [f"{name} ({kind}, from {source}): evalkit runs it", f"weights folder: {folder}", ""]
    width = max(len(s.name) for s in description.settings)
    for setting in description.settings:
        first, *rest = _value_lines(setting.value)
        lines.append(f"{setting.name.ljust(width)}  {first}{'  ' if first else ''}[{escape_terminal(setting.origin)}]")
        lines += [" " * width + line for line in rest]
    if description.task is not None and description.task_prompts is not None:
        task, task_type = escape_terminal(description.task), escape_terminal(description.task_type)
        lines += ["", f"prompts for {task} ({task_type}), the exact text put before each input:"]
        lines += [f"  {role}: {text!r}" for role, text in description.task_prompts.items()]
    return "\n".join(lines)


def add_models_command(sub: argparse._SubParsersAction) -> None:
    """``evalkit models [--search T] [--type K] [--json]`` and ``evalkit models show NAME [--task T] [--json]``."""
    from evalkit.registry.catalog import KINDS  # no mteb, no torch: the catalogue module imports them lazily

    models_p = sub.add_parser("models", help="list the model registry (mteb's and evalkit's); `models show NAME`")
    models_p.add_argument("--search", help="only models whose name contains this text (any case)")
    models_p.add_argument("--type", help=f"only models of this type: {', '.join(KINDS)}")
    models_p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models_p.set_defaults(func=cmd_models, models_command=None)
    models_sub = models_p.add_subparsers(dest="models_command")
    show_p = models_sub.add_parser("show", help="a model's resolved settings and where each came from")
    show_p.add_argument("name", help="a registry name, alias or short name, a local folder, or a hub id")
    show_p.add_argument("--task", help="also print the exact prompt or instruction per role for this task")
    show_p.add_argument("--json", action="store_true", help="print JSON instead of text")
    show_p.set_defaults(func=cmd_models)
