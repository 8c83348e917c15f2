"""The Markdown pieces of ``quick_mode.py``'s report: subset sizes, cold timings and where their seconds go, the
targets, the power each subset has against the CLS-pooling drop, and the grid of SciFact subset settings.

Every figure comes from a run's own files (result files, ``evalkit/<task>.run.json`` timings) or from
``evalkit.reports.diff``/``evalkit.subsets``; nothing is typed in.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CLS = "--pooling cls"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "—"


def subset_table(manifests: list[dict]) -> list[str]:
    lines = ["| task | rule | kept of full | manifest |", "| --- | --- | --- | --- |"]
    for m in manifests:
        for entry in m["selection"]:
            sizes = entry["sizes"]
            kept = (
                f"{sizes['queries']['kept']:,}/{sizes['queries']['full']:,} queries, "
                f"{sizes['docs']['kept']:,}/{sizes['docs']['full']:,} docs"
                if "docs" in sizes
                else ", ".join(f"{v['kept']:,}/{v['full']:,} {k}" for k, v in sizes.items() if k != "strata")
            )
            lines.append(f"| {m['task']} | {m['rule']} | {kept} | `{m['name']}` |")
    return lines


def timing_lines(full_s: list[float], quick_s: list[float]) -> list[str]:
    speedup = median(full_s) / median(quick_s)
    rounds = " ".join(f"{f:.1f}/{q:.1f}" for f, q in zip(full_s, quick_s, strict=True))
    return [
        "| baseline, cold whole process | median s | rounds (full/quick, in order) |",
        "| --- | ---: | --- |",
        f"| full tasks (A) | {median(full_s):.1f} | {rounds} |",
        f"| quick subsets (B) | {median(quick_s):.1f} | |",
        "",
        f"Speed-up of the median cold run: **{speedup:.1f}×** (target ≥ 10×: {'met' if speedup >= 10 else 'NOT met'}).",
    ]


def task_seconds(output: Path) -> dict[str, float]:
    """task → compute seconds of one run (its ``evalkit/<task>.run.json`` timings), from an ``--output`` folder."""
    seconds: dict[str, float] = {}
    for record in sorted(output.rglob("evalkit/*.run.json")):
        data = json.loads(record.read_text())
        seconds[data["task"]["name"]] = float(data["timings"]["compute_s"])
    return seconds


def breakdown_lines(wall: dict[str, float], outputs: dict[str, Path], retrieval: list[str]) -> list[str]:
    """Where a cold run's seconds go: retrieval tasks, the other tasks, and the rest (interpreter start, imports,
    model load, task loading, writing) = wall − tasks' compute."""
    lines = [
        "| cold run | wall s | retrieval tasks s | other tasks s | per other task s | start-up and the rest s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for side, seconds in wall.items():
        per_task = task_seconds(outputs[side])
        retrieval_s = sum(v for t, v in per_task.items() if t in retrieval)
        others = [v for t, v in per_task.items() if t not in retrieval]
        per_other = f"{sum(others) / len(others):.2f}" if others else "—"
        rest = seconds - retrieval_s - sum(others)
        lines.append(f"| {side} | {seconds:.1f} | {retrieval_s:.1f} | {sum(others):.1f} | {per_other} | {rest:.1f} |")
    return lines


def cls_flagged(report: Any) -> tuple[list[str], list[str]]:
    """Tasks where ``diff`` calls --pooling cls a regression: on the full task, on the subset."""
    rows = [(t.task, s) for t in report.tasks for s in t.scores if s.label == CLS]
    return [t for t, s in rows if s.full_verdict == "regression"], [
        t for t, s in rows if s.subset_verdict == "regression"
    ]


def _separable(report: Any) -> str:
    pooled = getattr(report.pooled, "separable", None)
    if pooled is None:
        return "- pairs the full task separates: not measured (`pairs=False`)"
    worst = getattr(report, "min_separable_tau", math.nan)
    return (
        f"- pairs of runs the full task separates (paired test, Holm, alpha {report.settings.alpha:g}): "
        f"{pooled.separable}/{pooled.pairs}; order kept on the subset {pooled.kept}, reversed {pooled.reversed}, "
        f"tied {pooled.tied}; τ over them: all tasks {_fmt(pooled.tau)}, worst task {_fmt(worst)}"
    )


def target_lines(report: Any) -> list[str]:
    on_full, on_subset = cls_flagged(report)
    missed = sorted(set(on_full) - set(on_subset))
    return [
        f"- Kendall τ-b over the whole panel ≥ 0.9: worst task {report.min_kendall:.3f}, mean over tasks "
        f"{report.pooled.kendall:.3f} ({'met' if report.min_kendall >= 0.9 else 'NOT met'} by every task)",
        _separable(report),
        f"- diff's verdicts equal on subset and full task: {report.pooled.agreements}/{report.pooled.verdicts}",
        f"- the CLS-pooling regression: flagged on {len(on_full)} full tasks ({', '.join(on_full) or 'none'}), "
        f"on {len(on_subset)} subsets ({', '.join(on_subset) or 'none'})"
        + (f"; missed on the subset: {', '.join(missed)}" if missed else "; none missed"),
    ]


def _needed(t: Any) -> str:
    """Items that detect this drop at 80% power: the detectable drop shrinks as 1/sqrt(n), so
    n × (detectable / |drop|)² (the Holm level of this diff's family)."""
    if t.test is None or t.detectable_drop is None or t.delta == 0:
        return "—"
    return f"{math.ceil(t.test.n * (t.detectable_drop / abs(t.delta)) ** 2):,}"


def power_lines(rows: list[tuple[str, Any, Any]]) -> list[str]:
    """Per task: CLS's drop and the smallest drop ``diff`` finds at 80% power, full task vs subset (``rows``:
    task, the full task's comparison, the subset's), and the items a check needs to see the full task's drop."""
    lines = [
        "| task | CLS Δ full | detectable, full (n) | CLS Δ subset | detectable, subset (n) | "
        "items that detect the full Δ | flagged full / subset |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for task, full, subset in rows:
        cells = []
        for t in (full, subset):
            detectable = t.detectable_drop if t.detectable_drop is not None else math.nan
            n = f" ({t.test.n:,})" if t.test is not None else ""
            cells += [f"{100 * t.delta:+.2f}", _fmt(100 * detectable, 2) + n]
        flags = " / ".join("yes" if t.regression else "no" for t in (full, subset))
        lines.append(f"| {task} | {' | '.join(cells)} | {_needed(full)} | {flags} |")
    return lines


def grid_lines(rows: list) -> list[str]:
    lines = [
        "| pools | depth | max queries | SciFact kept (queries, docs) | cold speed-up, SciFact only | "
        "Kendall τ-b (panel) | τ over separable pairs (kept/reversed/tied of n) | verdicts agree | CLS flagged |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- | ---: | --- |",
    ]
    for pools, depth, max_queries, sizes, speedup, report in rows:
        row = report.tasks[0]
        sep = getattr(row, "separable", None)
        sep_cell = (
            f"{_fmt(sep.tau)} ({sep.kept}/{sep.reversed}/{sep.tied} of {sep.separable})" if sep is not None else "—"
        )
        _, flagged = cls_flagged(report)
        lines.append(
            f"| {pools} | {depth} | {max_queries} | {sizes['queries']['kept']}, {sizes['docs']['kept']:,} | "
            f"{speedup:.1f}× | {_fmt(row.kendall)} | {sep_cell} | {row.agreements}/{row.verdicts} | "
            f"{'yes' if row.task in flagged else 'no'} |"
        )
    return lines
