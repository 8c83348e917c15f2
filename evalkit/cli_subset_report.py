"""``evalkit subset report``: how faithfully quick subsets rank and judge a panel of runs (``subset_fidelity``).

Exit codes: 0 the report printed (whatever the fidelity: it is a measurement, not a verdict); 2 bad input (a
missing or malformed results folder, a label twice, a baseline not in the panel, a full run on a subset or a subset
run on the full task, runs that ``diff`` cannot compare). Output files are written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evalkit.cli_reports import _add_test_options, _settings, _write


def cmd_subset_report(args: argparse.Namespace) -> int:
    from evalkit.subsets.fidelity import subset_fidelity
    from evalkit.subsets.fidelity_format import format_text

    panel = [(label, Path(full), Path(subset)) for label, full, subset in args.run or []]
    report = subset_fidelity(panel, baseline=args.baseline, settings=_settings(args), pairs=not args.no_pairs)
    if args.markdown:
        _write(args.markdown, report.to_markdown())
    if args.json:
        _write(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
    sys.stdout.write(format_text(report))
    return 0


def add_subset_report_command(subset_commands: argparse._SubParsersAction) -> None:
    """Add ``report`` to the ``evalkit subset`` group (``subset_commands``: its sub-parsers)."""
    report = subset_commands.add_parser(
        "report",
        help="fidelity of quick subsets over a panel of runs: rank agreement, score shift, diff verdicts",
        description="Each --run names one run scored on the full tasks and on their quick subsets. Per task: "
        "Spearman and Kendall tau-b between full and subset scores over the panel, mean and largest |shift|, and "
        "whether diff's verdict against --baseline is the same on the subset; and of the pairs of runs the full task "
        "separates (diff's test on every pair), how many keep their order on the subset. Exit 0, or 2 on bad input.",
    )
    report.add_argument(
        "--run",
        nargs=3,
        action="append",
        required=True,
        metavar=("LABEL", "FULL_DIR", "SUBSET_DIR"),
        help="a run of the panel: its label, its full-task results folder, its subset results folder (repeat)",
    )
    report.add_argument("--baseline", required=True, help="the label every other run is diffed against")
    _add_test_options(report)
    report.add_argument(
        "--no-pairs",
        action="store_true",
        help="skip the pairwise tests (one full-task diff per pair of runs) and the separable-pair columns",
    )
    report.add_argument("--markdown", type=Path, help="also write the report as Markdown here")
    report.add_argument("--json", type=Path, help="also write the report as JSON here")
    report.set_defaults(func=cmd_subset_report)
