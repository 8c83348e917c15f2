"""A run diff as a pull-request comment (Markdown) and as JUnit XML (one test case per task) for CI dashboards.

Names come from result files: every one goes through its format's escape (``escape_markdown``, ``escape_xml``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from evalkit.reports.diff import RunDiff, comparison_cells, describe_settings, notes
from evalkit.reports.escape import escape_markdown, escape_xml


def format_markdown(diff: RunDiff) -> str:
    rows = [comparison_cells(t) for t in diff.tasks]
    columns = list(rows[0]) if rows else []
    numeric = {"baseline", "candidate", "delta", "p", "p (Holm)"}
    status = "❌ regression" if diff.regressions else "✅ no significant regression"
    lines = [
        f"### evalkit diff: {status}",
        "",
        f"- baseline: {escape_markdown(diff.baseline.label)}",
        f"- candidate: {escape_markdown(diff.candidate.label)}",
        f"- {escape_markdown(describe_settings(diff.settings, len(diff.tasks)))}",
        "",
        "| " + " | ".join(escape_markdown(c) for c in columns) + " |",
        "| " + " | ".join("---:" if c in numeric else "---" for c in columns) + " |",
    ]
    for row, task in zip(rows, diff.tasks, strict=True):
        cells = [escape_markdown(row[c]) for c in columns]
        if task.regression:
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- {escape_markdown(line)}" for line in notes(diff))]
    lines += ["", escape_markdown(diff.verdict()), ""] if notes(diff) else [escape_markdown(diff.verdict()), ""]
    return "\n".join(lines)


def format_junit(diff: RunDiff) -> str:
    """One ``testcase`` per task; a regression is a ``failure``, an untested task carries its reason."""
    suite = ET.Element(
        "testsuite",
        name=escape_xml(f"evalkit diff {diff.candidate.label} vs {diff.baseline.label}"),
        tests=str(len(diff.tasks)),
        failures=str(len(diff.regressions)),
        errors="0",
        skipped="0",
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("baseline", diff.baseline.label),
        ("candidate", diff.candidate.label),
        ("test", describe_settings(diff.settings, len(diff.tasks))),
        *(("note", line) for line in notes(diff)),
    ):
        ET.SubElement(properties, "property", name=key, value=escape_xml(value))
    for task in diff.tasks:
        row = comparison_cells(task)
        case = ET.SubElement(
            suite, "testcase", classname=escape_xml(f"evalkit.diff.{task.task_type}"), name=escape_xml(task.task)
        )
        summary = escape_xml("; ".join(f"{k}: {v}" for k, v in row.items() if v and k not in {"task", "type"}))
        if task.regression:
            message = escape_xml(f"{task.task} dropped {row['delta']} points")
            failure = ET.SubElement(case, "failure", message=message, type="regression")
            failure.text = summary
        ET.SubElement(case, "system-out").text = summary
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
