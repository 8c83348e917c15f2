"""The ``evalkit`` command line. Thin: every command is one library call plus printing."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.errors import EXIT_BROKEN_PIPE, EXIT_INTERNAL, EvalkitError
from evalkit.reports.escape import escape_terminal

if TYPE_CHECKING:
    from evalkit.registry.tasks import TaskSpec
    from evalkit.runner import RunSummary

EXIT_INCOMPLETE = 3
"""``evalkit run`` finished, but some tasks were skipped (their data was missing)."""


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    rows = [[escape_terminal(c) for c in row] for row in rows]  # names from spec files reach the terminal inert
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _spec_row(s: TaskSpec) -> tuple[str, ...]:
    dataset = f"{s.dataset_path}@{(s.dataset_revision or '-')[:10]}" if s.dataset_path else str(s.data_dir)
    languages = (
        ",".join(s.languages) if len(s.languages) <= 3 else f"{','.join(s.languages[:3])},+{len(s.languages) - 3}"
    )
    return (
        s.name,
        s.type,
        languages,
        ",".join(s.eval_splits),
        s.main_score,
        dataset,
        "yes" if s.remove_self_hits else "no",
        s.metadata_source,
    )


def cmd_tasks(args: argparse.Namespace) -> int:
    from evalkit.registry.tasks import default_registry

    registry = default_registry()
    if args.benchmark:
        from evalkit.registry.benchmarks import get_benchmark

        bench = get_benchmark(args.benchmark)
        by_name = {t.metadata.name: registry.get(t.metadata.name, mteb_task=t) for t in bench.mteb_tasks()}
        by_name.update({name: registry.get(name) for name in bench.spec_tasks})  # tasks only evalkit defines
        specs = [by_name[name] for name in bench.task_names if name in by_name]
        if args.type:
            specs = [s for s in specs if s.type.lower() == args.type.lower()]
        if args.lang:
            specs = [s for s in specs if args.lang in s.languages or args.lang in s.language_codes]
        rows = [_spec_row(s) for s in specs]
        rows += [
            (name, kind, "", "", "", f"not in mteb: {why}", "", "") for name, (kind, why) in bench.not_in_mteb.items()
        ]
        title = f"{bench.name}" + (f" (aliases: {', '.join(bench.aliases)})" if bench.aliases else "")
        print(title)
    else:
        rows = [_spec_row(s) for s in registry.select(task_type=args.type, language=args.lang)]
    _print_table(
        ("task", "type", "languages", "splits", "main score", "dataset", "self-hits removed", "metadata"), rows
    )
    print(f"\n{len(rows)} tasks")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from evalkit.options import RunOptions
    from evalkit.registry.tasks import default_registry
    from evalkit.reports.table import format_table, score_row
    from evalkit.runner import RunConfig, run

    registry = default_registry()
    options = RunOptions.from_namespace(args, command=["evalkit", *sys.argv[1:]])
    summary = run(RunConfig(args.model, options=options), registry)
    rows = [score_row(w.result_file, registry) for w in summary.written]
    print(format_table(rows, model=args.model))
    if summary.written:
        revision_dir = summary.written[0].result_file.parent
        print(f"\nresults: {revision_dir}")
        if options.selection.benchmark:
            print(_benchmark_summary(revision_dir, options.selection.benchmark))
    _print_cache_line(summary)
    for warning in summary.model_warnings:  # also in every task's run record
        print(f"evalkit: warning: {escape_terminal(args.model)}: {escape_terminal(warning)}", file=sys.stderr)
    for written in summary.written:  # valid but degenerate data: scored, and said so (also in the run record)
        for warning in written.outcome.warnings:
            name = escape_terminal(written.spec.name)
            print(f"evalkit: warning: {name}: {escape_terminal(warning)}", file=sys.stderr)
    if summary.skipped:
        print(f"\nskipped {len(summary.skipped)} task(s):", file=sys.stderr)
        for task in summary.skipped:
            print(f"  {escape_terminal(task.name)}: {escape_terminal(task.reason)}", file=sys.stderr)
        if not options.selection.allow_missing:
            print(
                f"evalkit: error: incomplete run ({len(summary.skipped)} of "
                f"{len(summary.skipped) + len(summary.written)} tasks skipped); --allow-missing accepts that",
                file=sys.stderr,
            )
            return EXIT_INCOMPLETE
    return 0


def _print_cache_line(summary: RunSummary) -> None:
    stats = summary.embedding_stats
    if summary.cache is not None:
        size = summary.cache.size()
        print(
            f"embeddings: {stats.get('encoded', 0):,} texts encoded, {stats.get('cached', 0):,} read from the cache "
            f"({summary.cache.store}: {size.entries:,} vectors, {size.bytes / 2**20:.1f} MiB)"
        )


def _benchmark_summary(revision_dir: Path, benchmark: str) -> str:
    from evalkit.results.benchmark_scores import benchmark_scores
    from evalkit.results.folders import read_model_folder
    from evalkit.results.language_scores import language_tables

    files = read_model_folder(revision_dir)
    scores = benchmark_scores(files, benchmark)

    def fmt(value: float | None) -> str:
        return "missing" if value is None else f"{100 * value:.2f}"

    lines = [f"\n{scores.benchmark}: mean over tasks {fmt(scores.mean)}"]
    lines += [f"  {task_type}: {fmt(value)}" for task_type, value in sorted(scores.per_type.items())]
    if scores.missing:
        lines.append(f"  missing ({len(scores.missing)}): {escape_terminal(', '.join(scores.missing))}")
    for table in language_tables(files, benchmark):  # the BGE-M3 paper's per-language tables (MIRACL, MKQA)
        rows = [["language", *table.metrics]]
        rows += [[lang, *(fmt(table.scores[lang][m]) for m in table.metrics)] for lang in table.languages]
        rows.append(["average", *(fmt(table.average[m]) for m in table.metrics)])
        rows = [[escape_terminal(cell) for cell in row] for row in rows]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        rows.insert(1, ["-" * w for w in widths])
        title = f"{table.task} ({table.split}), per language" + (f": {table.note}" if table.note else "")
        lines.append("\n" + escape_terminal(title))
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalkit", description="Evaluate text-embedding models, MTEB-faithfully.")
    parser.add_argument(
        "--debug", action="store_true", help="print the full traceback of an internal error (also EVALKIT_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser("run", help="evaluate a model on tasks and write MTEB-format results")
    run_p.add_argument("--model", required=True, help="registry name, local folder, or hub id")
    from evalkit.options import RunOptions

    RunOptions.add_arguments(run_p)  # every option is declared once, on its section (evalkit/options/)
    run_p.set_defaults(func=cmd_run)

    tasks_p = sub.add_parser("tasks", help="list the known tasks")
    tasks_p.add_argument("--type", help="Retrieval, STS, ...")
    tasks_p.add_argument("--lang", help="a language code: eng or eng-Latn")
    tasks_p.add_argument("--benchmark", help='only the tasks of a benchmark, e.g. "MTEB(cmn, v1)", C-MTEB, BEIR')
    tasks_p.set_defaults(func=cmd_tasks)

    from evalkit.cli_models import add_models_command

    add_models_command(sub)  # `evalkit models` and `evalkit models show NAME` (evalkit/cli_models.py)

    from evalkit.cli_reports import add_report_commands

    add_report_commands(sub)

    from evalkit.cli_subset import add_subset_command

    add_subset_command(sub)  # `evalkit subset build|show|report` (evalkit/cli_subset.py)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("EVALKIT_DEBUG", "") not in ("", "0")
    try:
        return args.func(args)
    except EvalkitError as err:
        print(f"evalkit: error: {escape_terminal(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `evalkit ... | head`: the reader left; exit as a shell does on SIGPIPE, not as a bug
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes it
        return EXIT_BROKEN_PIPE
    except Exception as err:  # a bug: its own exit code, never one a CI script reads as a verdict
        return report_internal_error(err, debug=debug)


def report_internal_error(err: BaseException, *, debug: bool) -> int:
    """One line on stderr and the traceback saved to a file (printed whole with ``--debug``/``EVALKIT_DEBUG=1``)."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    if debug:
        sys.stderr.write(text)
    saved = ""
    try:
        handle, path = tempfile.mkstemp(prefix="evalkit-traceback-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(text)
        saved = f"; traceback saved to {path}"
    except OSError:
        pass
    message = escape_terminal(f"{type(err).__name__}: {err}")[:300]
    print(f"evalkit: internal error (a bug in evalkit, please report it): {message}{saved}", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
