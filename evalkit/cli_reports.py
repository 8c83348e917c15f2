"""The report commands: ``leaderboard``, ``diff``, ``compare``, ``plan`` and ``submit``. Each reads result folders only.

Exit codes: 0 fine; 1 ``diff`` found a significant regression; 2 bad input or runs that cannot be compared.
Every output file is written whole or not at all, after all the work that could fail.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.errors import EvalkitError
from evalkit.results.atomic import write_text

EXIT_REGRESSION = 1
MAX_DECIMALS = 10

if TYPE_CHECKING:
    from evalkit.reports.diff import DiffSettings


def _write(path: Path, text: str) -> None:
    """An output file, or one line naming it: a folder or an unwritable place is bad input, not a bug."""
    try:
        write_text(path, text)
    except OSError as err:
        raise EvalkitError(f"cannot write: {err.strerror or err}", file=path) from None


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        _write(out, text)
        print(f"written: {out}", file=sys.stderr)


def _check_leaderboard_options(args: argparse.Namespace) -> None:
    """Every option that can be judged before a folder is read, named as typed."""
    from evalkit.reports.leaderboard_render import check_label

    if not 0 <= args.decimals <= MAX_DECIMALS:
        raise EvalkitError(f"must be in [0, {MAX_DECIMALS}], got {args.decimals}", field="--decimals")
    for flag, value, least in (("--resamples", args.resamples, 1), ("--seed", args.seed, 0)):
        if value < least:
            raise EvalkitError(f"must be a whole number of at least {least}, got {value}", field=flag)
    for flag, value in (("--caption", args.caption), ("--label", args.label)):
        if value is not None and args.format != "latex":
            raise EvalkitError("only with --format latex", field=flag)
    try:
        check_label(args.label)
    except EvalkitError as err:
        raise EvalkitError(err.message, field="--label") from None


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from evalkit.reports.api import leaderboard
    from evalkit.reports.leaderboard_render import render_board

    _check_leaderboard_options(args)
    board = leaderboard(
        args.results,
        args.benchmark,
        each_revision=args.each_revision,
        rank_intervals=args.rank_intervals,
        resamples=args.resamples,
        seed=args.seed,
        speed=args.speed,
    )
    text = render_board(
        board,
        args.format,
        decimals=args.decimals,
        columns=args.columns,
        transpose_table=args.transpose,
        caption=args.caption,
        label=args.label,
    )
    _emit(text, args.out)
    return 0


def _settings(args: argparse.Namespace) -> DiffSettings:
    """The test options, checked by the library before any run is read; an error names the option as typed."""
    from evalkit.reports.diff import DiffSettings, InvalidSettingError

    try:
        return DiffSettings(
            test=args.test, alpha=args.alpha, max_drop=args.max_drop, resamples=args.resamples, seed=args.seed
        )
    except InvalidSettingError as err:
        raise InvalidSettingError(err.message, field=f"--{(err.field or '').replace('_', '-')}") from None


def cmd_diff(args: argparse.Namespace) -> int:
    from evalkit.reports.api import diff as diff_of
    from evalkit.reports.diff import format_text
    from evalkit.reports.diff_formats import format_junit, format_markdown

    diff = diff_of(args.baseline, args.candidate, settings=_settings(args), shared_only=args.shared_only)
    if args.markdown:
        _write(args.markdown, format_markdown(diff))
    if args.junit:
        _write(args.junit, format_junit(diff))
    _step_summary(format_markdown(diff))
    print(format_text(diff))
    return diff.exit_code


def _step_summary(markdown: str) -> None:
    """Append the report to GitHub's job summary when ``GITHUB_STEP_SUMMARY`` names one. A summary that cannot be
    written is a warning, not exit 2: the verdict (0/1) is the contract and stands."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    except OSError as err:
        print(f"warning: cannot append to GITHUB_STEP_SUMMARY ({target}): {err.strerror or err}", file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    from evalkit.reports.plan import plan_check

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise EvalkitError("name at least one task", field="--tasks")
    sys.stdout.write(plan_check(tasks, args.max_drop, args.baseline, alpha=args.alpha).format_text())
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from evalkit.reports.api import compare
    from evalkit.reports.compare import format_compare_html, format_compare_markdown

    diffs = compare(args.baseline, args.runs, settings=_settings(args))
    markdown = format_compare_markdown(diffs)
    if args.html:
        _write(args.html, format_compare_html(diffs, title=args.title))
    if args.markdown:
        _write(args.markdown, markdown)
    print(markdown)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from evalkit.results.submit import submit_results

    written = submit_results(args.results, args.out)
    for path in written:
        print(path)
    print(f"{len(written)} files written under {args.out}", file=sys.stderr)
    return 0


def _add_test_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--test",
        choices=("bootstrap", "permutation", "ttest"),
        default="bootstrap",
        help="paired test (default: bootstrap)",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level after Holm (default 0.05)")
    parser.add_argument(
        "--max-drop", type=float, default=0.0, help="tolerated drop of a main score, in points ×100 (default 0)"
    )
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap/permutation resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")


def add_report_commands(sub: argparse._SubParsersAction) -> None:
    _add_leaderboard(sub)

    diff = sub.add_parser("diff", help="regression check: candidate vs baseline with paired tests (exit 1: regression)")
    diff.add_argument("baseline", type=Path, help="results folder of the baseline run")
    diff.add_argument("candidate", type=Path, help="results folder of the candidate run")
    _add_test_options(diff)
    diff.add_argument("--markdown", type=Path, help="also write a pull-request comment here")
    diff.add_argument("--junit", type=Path, help="also write JUnit XML here (one test case per task)")
    diff.add_argument(
        "--shared-only", action="store_true", help="judge the tasks both runs have and list the others (else: exit 2)"
    )
    diff.set_defaults(func=cmd_diff)

    plan = sub.add_parser("plan", help="how many queries or pairs a diff needs to detect --max-drop at 80%% power")
    plan.add_argument("--tasks", required=True, help="comma-separated task names")
    plan.add_argument("--max-drop", type=float, required=True, help="drop to detect, in points ×100")
    plan.add_argument("--baseline", type=Path, help="results folder whose per-item scores give the spread (required)")
    plan.add_argument("--alpha", type=float, default=0.05, help="significance level, Holm over the tasks (0.05)")
    plan.set_defaults(func=cmd_plan)

    compare = sub.add_parser("compare", help="ablation report: runs against a baseline, with plots")
    compare.add_argument("runs", nargs="+", type=Path, help="results folders of the runs")
    compare.add_argument("--baseline", type=Path, required=True, help="results folder of the baseline run")
    _add_test_options(compare)
    compare.add_argument("--html", type=Path, help="write a self-contained HTML report here")
    compare.add_argument("--markdown", type=Path, help="write the Markdown table here")
    compare.add_argument("--title", default="evalkit ablation comparison")
    compare.set_defaults(func=cmd_compare)

    submit = sub.add_parser("submit", help="write results in the embeddings-benchmark/results layout, checked")
    submit.add_argument("results", type=Path, help="a results folder written by evalkit run")
    submit.add_argument("--out", type=Path, required=True, help="root of the results repository layout")
    submit.set_defaults(func=cmd_submit)


def _add_leaderboard(sub: argparse._SubParsersAction) -> None:
    board = sub.add_parser("leaderboard", help="models × tasks with MTEB's averages and Borda rank")
    board.add_argument("results", nargs="+", type=Path, help="results folders (any MTEB results layout)")
    board.add_argument("--benchmark", help='score on a benchmark\'s tasks, e.g. "MTEB(eng, v1)"')
    board.add_argument("--format", choices=("md", "csv", "html", "latex"), default="md")
    board.add_argument(
        "--columns",
        choices=("means", "types", "tasks"),
        help="score columns: the means; types (default) adds per-type means; tasks adds every task (CSV: tasks)",
    )
    board.add_argument("--decimals", type=int, default=2)
    board.add_argument(
        "--each-revision",
        action="store_true",
        help="a row per revision and per experiment (a model's ablations and hybrids beside it), not one per model",
    )
    board.add_argument(
        "--rank-intervals",
        action="store_true",
        help="95%% rank intervals by two units: within tasks (per-item scores) and across tasks",
    )
    board.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the intervals (1000)")
    board.add_argument("--seed", type=int, default=0, help="seed of the intervals' resampling (default 0)")
    board.add_argument(
        "--speed", action="store_true", help="texts/s, tokens/s, peak memory, device, precision from the run records"
    )
    board.add_argument("--transpose", action="store_true", help="models as columns, measures as rows")
    board.add_argument("--caption", help="LaTeX caption (default: the title)")
    board.add_argument("--label", help="LaTeX label, e.g. tab:leaderboard")
    board.add_argument("--out", type=Path, help="write here instead of standard output")
    board.set_defaults(func=cmd_leaderboard)
