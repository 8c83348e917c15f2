"""``evalkit subset``: build a quick subset of a task (``build``), print one (``show``), measure fidelity (``report``).

Thin: :func:`evalkit.subsets.build_subset` and :func:`evalkit.subsets.read_manifest` do the work; this module prints.
Exit codes: 0 built or shown; 2 bad input (an unknown task, a malformed or tampered manifest, a pool run that does
not parse or names a query or document the task lacks, a task no rule covers, a retrieval subset with no pool run,
an unsafe ``--name``). ``report`` is :mod:`evalkit.cli_subset_report`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evalkit.reports.escape import escape_terminal


def _entry_line(entry: dict[str, Any]) -> str:
    sizes = entry.get("sizes", {})
    where = f"{entry['hf_subset']}/{entry['split']}"
    if entry["kind"] == "retrieval":
        queries, docs = sizes["queries"], sizes["docs"]
        return (
            f"{where}: {queries['kept']:,} of {queries['full']:,} queries, "
            f"{docs['kept']:,} of {docs['full']:,} documents"
        )
    if entry["kind"] == "reranking":
        return f"{where}: {sizes['queries']['kept']:,} of {sizes['queries']['full']:,} queries, all their candidates"
    return f"{where}: {sizes['rows']['kept']:,} of {sizes['rows']['full']:,} pairs"


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """What a subset is, in a few lines: name, task and rule, kept of full per split, parameters, pool runs."""
    lines = [f"subset {manifest['name']}: {manifest['task']} by rule {manifest['rule']}"]
    lines += ["  " + escape_terminal(_entry_line(entry)) for entry in manifest["selection"]]
    params = ", ".join(f"{k}={v}" for k, v in manifest["parameters"].items())
    lines.append(f"parameters: {params}")
    lines += [f"pool: {run['label']} (sha256 {run['sha256'][:12]})" for run in manifest["pool"]]
    lines.append(f"source content sha256 {manifest['source']['content_sha256'][:12]}")
    lines.append(f"manifest sha256 {manifest['manifest_sha256']}")
    return [line if line.startswith("  ") else escape_terminal(line) for line in lines]


def cmd_subset_build(args: argparse.Namespace) -> int:
    from evalkit.subsets import build_subset

    built = build_subset(
        args.task,
        baseline=args.baseline,
        pool=args.pool or (),
        bm25=args.bm25,
        depth=args.depth,
        max_queries=args.max_queries,
        max_items=args.max_items,
        seed=args.seed,
        name=args.name,
        subsets_dir=args.subsets_dir,
        data_dirs=args.data_dirs or (),
        allow_hub=args.allow_hub,
    )
    print("\n".join(summary_lines(built.manifest)))
    print(f"written: {escape_terminal(built.path)}")
    return 0


def cmd_subset_show(args: argparse.Namespace) -> int:
    from evalkit.subsets import read_manifest
    from evalkit.subsets.manifest import manifest_path

    manifest = read_manifest(args.name, args.subsets_dir)
    print("\n".join(summary_lines(manifest)))
    print(f"file: {escape_terminal(manifest_path(args.name, args.subsets_dir))}")
    return 0


def _add_build(commands: argparse._SubParsersAction) -> None:
    from evalkit.subsets.manifest import DEFAULT_DEPTH, DEFAULT_MAX_ITEMS, DEFAULT_MAX_QUERIES, DEFAULT_SEED

    build = commands.add_parser("build", help="make a quick subset of a task and write its manifest")
    build.add_argument("--task", required=True, help="the task (see `evalkit tasks`)")
    build.add_argument("--baseline", type=Path, help="retrieval: pool the run in this results folder (--save-run)")
    build.add_argument(
        "--pool", type=Path, nargs="+", action="extend", metavar="RUN",
        help="retrieval: more pool runs, TREC run files or results folders made with --save-run",
    )  # fmt: skip
    build.add_argument("--no-bm25", dest="bm25", action="store_false", help="retrieval: leave BM25 out of the pool")
    build.add_argument(
        "--depth", type=int, default=DEFAULT_DEPTH, help=f"top documents per pool run (default {DEFAULT_DEPTH})"
    )
    build.add_argument(
        "--max-queries", type=int, default=DEFAULT_MAX_QUERIES,
        help=f"retrieval and reranking: queries kept at most (default {DEFAULT_MAX_QUERIES})",
    )  # fmt: skip
    build.add_argument(
        "--max-items", type=int, default=DEFAULT_MAX_ITEMS,
        help=f"STS and pair classification: pairs kept per split at most (default {DEFAULT_MAX_ITEMS})",
    )  # fmt: skip
    build.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"sampling seed (default {DEFAULT_SEED})")
    build.add_argument("--name", help="the subset's name (default <Task>-quick-<manifest sha256[:12]>)")
    build.add_argument("--data-dir", dest="data_dirs", type=Path, action="append", help="local mirror (repeatable)")
    build.add_argument("--no-hub", dest="allow_hub", action="store_false", help="never fall back to the hub")
    _add_subsets_dir(build)
    build.set_defaults(func=cmd_subset_build)


def _add_subsets_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subsets-dir", type=Path, help="where manifests are (default: $EVALKIT_SUBSETS_DIR, else ./subsets)"
    )


def add_subset_command(sub: argparse._SubParsersAction) -> None:
    """``evalkit subset build|show|report``."""
    subset = sub.add_parser("subset", help="quick subsets of tasks: build one, show one, measure their fidelity")
    commands = subset.add_subparsers(dest="subset_command", required=True)
    _add_build(commands)
    show = commands.add_parser("show", help="print a subset's manifest: task, rule, sizes, pool runs, checksums")
    show.add_argument("name", help="the subset's name")
    _add_subsets_dir(show)
    show.set_defaults(func=cmd_subset_show)
    from evalkit.cli_subset_report import add_subset_report_command  # helper H2's: `evalkit subset report`

    add_subset_report_command(commands)
