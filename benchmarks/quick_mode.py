"""Quick mode: do quick subsets of SciFact and the English STS tasks rank and judge runs as the full tasks do, and
how much faster is a cold quick run?

1. The baseline (the packaged all-MiniLM-L6-v2, fp32) runs cold on the full tasks (``--save-run``: its ranked lists
   pool the SciFact subset), then subsets are built with ``evalkit subset build`` (library call ``build_subset``:
   BM25 + the baseline for SciFact, or with ``--pools panel`` BM25 + every retrieval run of the panel, so that no
   run keeps its own hard negatives while another's are dropped; stratified pairs for STS).
2. Timing: cold whole ``evalkit run`` processes, each with a fresh cache folder, full and quick alternated
   (A B A B ...), medians. The first full and quick runs are also the baseline's panel runs.
3. The panel (int8 ONNX, bf16, paraphrase-MiniLM-L3, BM25, SPLADE-tiny, a dense+BM25 hybrid, and the ablations
   --pooling cls, --max-length 128, --no-normalize) runs on the full tasks and on the subsets, in this process
   through ``evalkit.cli.main`` with the very arguments a user types; the ablations' full runs are reused from
   reports/ablations/runs when their data checksums match the mirror (``--fresh``: never).
4. ``subset_fidelity`` over the panel (τ over the whole panel, and over the pairs of runs the full task separates),
   the power of each subset against the CLS-pooling drop (``diff``'s detectable drop at 80% power), where a cold
   run's seconds go; ``--grid``: SciFact subsets of other pools × depths × query caps, each panel run on them, and
   one cold quick run of each against one cold full SciFact run.

    .venv/bin/python benchmarks/quick_mode.py [--data-dir ../shared/data/tasks] [--work DIR] [--rounds 2]
        [--depth 250] [--max-queries 1000] [--max-items 1000] [--pools baseline|panel] [--grid]
        [--grid-points POOLS:DEPTH:QUERIES ...] [--panel-cache DIR] [--fresh]
        [--graph-cached] [--dry]

``--graph-cached`` copies the baseline's exported ONNX graph into each fresh cache first, as a CI job's restored
cache holds it, so the timing is of computing vectors, not of exporting the graph. ``--dry`` runs a tiny version
(a slice of SciFact and BIOSSES, three panel runs, one round) into ``--work`` and writes its report there, not to
reports/bench/.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OtherCpu, activity_section, other_activity
from _machine import machine_header, write_report
from _quick_mode_panel import (
    BASELINE,
    DRY_PANEL,
    PANEL,
    POOLS,
    RETRIEVAL,
    ROOT,
    STS,
    Entry,
    Setup,
    build_subsets,
    cold_seconds,
    evalkit_cli,
    pool_folders,
    reusable,
    subset_flags,
    tiny_mirror,
)
from _quick_mode_report import (
    CLS,
    breakdown_lines,
    grid_lines,
    power_lines,
    subset_table,
    target_lines,
    timing_lines,
)


def timed_rounds(setup: Setup, manifests_of: Any, rounds: int) -> tuple[list[float], list[float], list[dict]]:
    """Full (A) and quick (B) cold runs of the baseline, alternated; the first of each kept as the panel's runs.
    ``manifests_of(full_dir)`` builds the subsets after the first full run (its ranked lists pool SciFact)."""
    full_s, quick_s, manifests = [], [], []
    tasks = setup.tasks(PANEL[0])
    for index in range(rounds):
        full_out = setup.work / ("runs/full" if index == 0 else f"timing/full{index}") / PANEL[0].folder
        argv = ["run", *PANEL[0].flags, "--tasks", *tasks, *setup.common(), "--save-run", "--output", str(full_out)]
        full_s.append(cold_seconds([*argv, *setup.fresh_cache(f"full{index}")]))
        if index == 0:
            manifests = manifests_of(full_out)
        quick_out = setup.work / ("runs/quick" if index == 0 else f"timing/quick{index}") / PANEL[0].folder
        argv = ["run", *PANEL[0].flags, *subset_flags(manifests, tasks), *setup.common(), "--output", str(quick_out)]
        quick_s.append(cold_seconds([*argv, *setup.fresh_cache(f"quick{index}")]))
        print(f"round {index + 1}: full {full_s[-1]:.1f} s, quick {quick_s[-1]:.1f} s", file=sys.stderr)
    return full_s, quick_s, manifests


def panel_runs(
    setup: Setup, panel: tuple[Entry, ...], manifests: list[dict], fresh: bool
) -> tuple[list[tuple], list[str]]:
    """(label, full folder, subset folder) for every entry; the baseline's come from the timed rounds."""
    cache = ["--cache-dir", str(setup.panel_cache)]
    entries, reused = [], []
    for entry in panel:
        full, quick = setup.work / "runs/full" / entry.folder, setup.work / "runs/quick" / entry.folder
        tasks = setup.tasks(entry)
        if entry.label != BASELINE:
            if not fresh and reusable(entry.reuse, setup, tasks):
                full = entry.reuse
                reused.append(entry.label)
            else:
                evalkit_cli(["run", *entry.flags, "--tasks", *tasks, *setup.common(), *cache, "--output", str(full)])
            evalkit_cli(["run", *entry.flags, *subset_flags(manifests, tasks), *setup.common(), *cache,
                         "--output", str(quick)])  # fmt: skip
        entries.append((entry.label, full, quick))
    return entries, reused


def grid(
    setup: Setup, panel: tuple[Entry, ...], points: list[tuple[str, int, int]], max_items: int, settings: Any
) -> list:
    """SciFact subsets per (pools, depth, max queries): panel runs on each, fidelity over the panel, one cold quick
    run each against one cold full SciFact run of the baseline."""
    from evalkit.subsets.fidelity import subset_fidelity

    common = setup.common()
    full_argv = ["run", *PANEL[0].flags, "--tasks", *setup.retrieval, *common]
    full_s = cold_seconds([*full_argv, "--output", str(setup.work / "grid/full"), *setup.fresh_cache("grid-full")])
    retrieval_only = replace(setup, sts=[])
    baseline_full = setup.work / "runs/full" / PANEL[0].folder
    rows = []
    for pools, depth, max_queries in points:
        folders = pool_folders(retrieval_only, panel, baseline_full, pools)
        manifests = build_subsets(retrieval_only, folders, depth, max_queries, max_items)
        tag = f"grid/{pools}-d{depth}-q{max_queries}"
        quick_s = cold_seconds(["run", *PANEL[0].flags, *subset_flags(manifests, setup.retrieval), *common,
                                "--output", str(setup.work / tag / "timed"), *setup.fresh_cache(tag)])  # fmt: skip
        entries = []
        for entry in panel:
            out = setup.work / tag / entry.folder
            evalkit_cli(["run", *entry.flags, *subset_flags(manifests, setup.retrieval), *common,
                         "--cache-dir", str(setup.panel_cache), "--output", str(out)])  # fmt: skip
            entries.append((entry.label, _full_of(entry, setup), out))  # STS: full only, listed, not measured
        report = subset_fidelity(entries, baseline=BASELINE, settings=settings)
        sizes = manifests[0]["selection"][0]["sizes"]
        rows.append((pools, depth, max_queries, sizes, full_s / quick_s, report))
    return rows


def _full_of(entry: Entry, setup: Setup) -> Path:
    fresh = setup.work / "runs/full" / entry.folder
    return fresh if fresh.is_dir() or entry.reuse is None else entry.reuse


def grid_point(text: str) -> tuple[str, int, int]:
    """``POOLS:DEPTH:QUERIES`` (``panel:5:50``) as a grid point."""
    pools, depth, queries = text.split(":")
    if pools not in POOLS:
        raise argparse.ArgumentTypeError(f"pools must be one of {', '.join(POOLS)}: {text}")
    return pools, int(depth), int(queries)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "../shared/data/tasks")
    parser.add_argument("--work", type=Path, help="keep runs, subsets and caches here (default: a scratch folder)")
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds of cold full/quick runs (default 2)")
    parser.add_argument("--depth", type=int, default=250)
    parser.add_argument("--max-queries", type=int, default=1000)
    parser.add_argument("--max-items", type=int, default=1000)
    parser.add_argument("--pools", choices=POOLS, default="baseline", help="who pools SciFact: BM25 + the baseline "
                        "(the rule's default) or BM25 + every retrieval run of the panel")  # fmt: skip
    parser.add_argument("--resamples", type=int, default=10_000, help="diff's bootstrap resamples (default 10000)")
    parser.add_argument("--grid", action="store_true", help="also SciFact subsets of other pools, depths and caps")
    parser.add_argument(
        "--grid-points",
        type=grid_point,
        nargs="+",
        default=[("baseline", 5, 50), ("panel", 5, 50), ("baseline", 10, 100), ("panel", 10, 100)],
        metavar="POOLS:DEPTH:QUERIES",
        help="SciFact subset settings of the grid, e.g. panel:5:50 (default: baseline and panel at 5:50 and 10:100)",
    )
    parser.add_argument("--fresh", action="store_true", help="rerun the ablations' full runs instead of reusing")
    parser.add_argument("--panel-cache", type=Path, help="the cache the panel's untimed runs share (default: the "
                        "first cold full run's); timed runs never read it")  # fmt: skip
    parser.add_argument(
        "--graph-cached",
        action="store_true",
        help="copy an exported ONNX graph into each fresh cache (as a CI cache restores it); vectors stay cold",
    )
    parser.add_argument("--dry", action="store_true", help="a tiny version in a scratch folder, seconds to minutes")
    return parser.parse_args()


def _setup(args: argparse.Namespace, work: Path) -> Setup:
    shared = args.panel_cache.resolve() if args.panel_cache else None
    if not args.dry:
        return Setup(args.data_dir.resolve(), work, list(RETRIEVAL), list(STS), dry=False, shared_cache=shared)
    data = tiny_mirror(args.data_dir.resolve(), work / "data")
    args.rounds, args.depth, args.max_queries, args.max_items, args.resamples = 1, 10, 8, 50, 500
    args.grid_points = [("baseline", 5, 6), ("panel", 5, 6)]
    return Setup(data, work, list(RETRIEVAL), ["BIOSSES"], dry=True, shared_cache=shared)


def cls_power(entries: list[tuple], settings: Any) -> list[tuple[str, Any, Any]]:
    """diff of the baseline against --pooling cls on the full tasks and on the subsets: the drop and the smallest
    drop each side could detect at 80% power."""
    from evalkit.reports.api import as_run
    from evalkit.reports.diff import diff_runs

    sides = {label: (full, quick) for label, full, quick in entries}
    if CLS not in sides:
        return []
    (base_full, base_quick), (cls_full, cls_quick) = sides[BASELINE], sides[CLS]
    full = diff_runs(as_run(base_full), as_run(cls_full), settings, shared_only=True)
    subset = {t.task: t for t in diff_runs(as_run(base_quick), as_run(cls_quick), settings, shared_only=True).tasks}
    return [(t.task, t, subset[t.task]) for t in full.tasks if t.task in subset]


def measure(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    """Every figure of the report: timed rounds, subsets, the panel's fidelity, CLS's power, the grid."""
    from evalkit.reports.diff import DiffSettings
    from evalkit.subsets.fidelity import subset_fidelity

    panel = DRY_PANEL if setup.dry else PANEL
    settings = DiffSettings(resamples=args.resamples)

    def manifests_of(baseline_full: Path) -> list[dict]:
        pools = pool_folders(setup, panel, baseline_full, args.pools)
        return build_subsets(setup, pools, args.depth, args.max_queries, args.max_items)

    full_s, quick_s, manifests = timed_rounds(setup, manifests_of, args.rounds)
    entries, reused = panel_runs(setup, panel, manifests, args.fresh)
    points = args.grid_points
    return {
        "full_s": full_s,
        "quick_s": quick_s,
        "manifests": manifests,
        "reused": reused,
        "report": subset_fidelity(entries, baseline=BASELINE, settings=settings),
        "power": cls_power(entries, settings),
        "grid": grid(setup, panel, points, args.max_items, settings) if args.grid else [],
    }


def render(args: argparse.Namespace, setup: Setup, found: dict[str, Any], header: str) -> list[str]:
    report = found["report"]
    outputs = {side: setup.work / "runs" / side / PANEL[0].folder for side in ("full", "quick")}
    wall = {"full": found["full_s"][0], "quick": found["quick_s"][0]}
    pooled_by = "BM25 and the baseline's" if args.pools == "baseline" else "BM25 and every retrieval run of the panel's"
    lines = [
        "# Quick subsets: fidelity and speed (SciFact and the English STS tasks)" + (" — DRY RUN" if setup.dry else ""),
        "",
        header,
        f"- command: `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`",
        f"- subsets: depth {args.depth}, max queries {args.max_queries}, max pairs {args.max_items}, seed 42; "
        f"SciFact pooled from {pooled_by} ranked lists",
        "- full runs reused from reports/ablations/runs (data checksums equal the mirror's): "
        + (", ".join(found["reused"]) or "none"),
        "",
        "## Targets",
        "",
        *target_lines(report),
        "",
        "## Speed: cold whole-process runs, fresh cache folder each, alternated A B A B",
        "",
        "Cold: a new process and a new cache folder per run, so every vector is computed; "
        + (
            "the exported ONNX graph is copied into each cache folder first (`--graph-cached`, as a CI cache "
            "restores it)."
            if setup.graph
            else "the ONNX graph is exported again in each run (a fixed cost of every cold run)."
        ),
        "",
        *timing_lines(found["full_s"], found["quick_s"]),
        "",
        "Where the first round's seconds went (the runs' own timings; the rest is interpreter start, imports, model "
        "load, reading the tasks and writing results):",
        "",
        *breakdown_lines(wall, outputs, setup.retrieval),
        "",
        "## Subsets",
        "",
        *subset_table(found["manifests"]),
        "",
        "## Can each subset see the CLS-pooling drop? (`diff`, points ×100, detectable at 80% power)",
        "",
        *power_lines(found["power"]),
        "",
        "## Fidelity over the panel (`subset_fidelity`, as `evalkit subset report`)",
        "",
        report.to_markdown().replace("### Quick-subset fidelity\n\n", "", 1).replace("#### ", "### "),
    ]
    if found["grid"]:
        lines += ["## SciFact subset settings: speed-up and ranking agreement", "", *grid_lines(found["grid"]), ""]
    return lines


def run_benchmark(args: argparse.Namespace, setup: Setup) -> str:
    if args.graph_cached:  # export the graph once, untimed, on the smallest task
        evalkit_cli(["run", *PANEL[0].flags, "--tasks", setup.sts[0], *setup.common(), "--output",
                     str(setup.work / "graph-run"), "--cache-dir", str(setup.work / "cache/graph")])  # fmt: skip
        setup.graph = setup.work / "cache/graph/onnx"
    header, before = machine_header(), other_activity()
    with OtherCpu() as others:
        found = measure(args, setup)
    return "\n".join(render(args, setup, found, header) + activity_section(others, before))


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="quick_mode-") as scratch:
        work = (args.work or Path(scratch)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        text = run_benchmark(args, _setup(args, work))
        if args.dry:
            path = work / "quick_mode_dry.md"
            path.write_text(text)
        else:
            path = write_report("quick_mode", text)
        print(text)
        print(f"written: {path}")


if __name__ == "__main__":
    main()
