"""Issue 12, class 8: names from result files stay inert text in every report format.

A model or task name may hold a spreadsheet formula, terminal escape sequences (ESC, BEL), characters XML forbids,
a GitHub mention or a URL. Each output format has one escaping function (``evalkit/reports/escape.py``); these
tests feed hostile names through every writer and check what comes out.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hostile import run_cli, snapshot
from run_folders import write_run

from evalkit.reports.compare import format_compare_html, format_compare_markdown
from evalkit.reports.diff import RunDiff, diff_runs, format_text
from evalkit.reports.diff_formats import format_junit, format_markdown
from evalkit.reports.escape import escape_csv_cell, escape_markdown, escape_xml, visible
from evalkit.reports.leaderboard import Leaderboard, LeaderboardRow, render
from evalkit.reports.runs import load_run
from evalkit.reports.table import ScoreRow, format_table

CONTROL = "\x1b]0;owned\x07\x1b[31m\x00\x08\x7f\x9b\ufffe\u202e"
FORMULA = "=HYPERLINK(evil)"
MODEL = f"{CONTROL}@octocat https://evil.example/x www.evil.example <b>|x"
TASK = f"{FORMULA}{CONTROL}"
RAW = ["\x1b", "\x07", "\x00", "\x08", "\x7f", "\x9b", "\ufffe", "\u202e"]


def _no_raw_control(text: str) -> None:
    found = [repr(c) for c in RAW if c in text]
    assert not found, f"raw control characters in the output: {found}"


def _no_live_markdown(text: str) -> None:
    """No GitHub mention, no autolink: ``@`` is never followed directly by a name, no scheme or ``www.`` intact."""
    assert "@octocat" not in text and "https://" not in text and "www.evil" not in text
    assert "<b>" not in text and "|x" not in text.replace("\\|x", "")


@pytest.fixture(scope="module")
def hostile_diff(tmp_path_factory: pytest.TempPathFactory) -> RunDiff:
    """A real diff of two small runs, then every name in it replaced by a hostile one."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    ndcg = rng.random(60)
    base = load_run(write_run(root / "base", retrieval=ndcg))
    cand = load_run(write_run(root / "cand", retrieval=np.clip(ndcg - 0.2, 0, 1)))
    diff = diff_runs(base, cand)
    tasks = [dataclasses.replace(t, task=TASK, task_type=CONTROL, main_score=CONTROL) for t in diff.tasks]
    assert tasks[0].regression
    return dataclasses.replace(
        diff,
        baseline=dataclasses.replace(diff.baseline, model=MODEL),
        candidate=dataclasses.replace(diff.candidate, model=MODEL, revision=f"r{CONTROL}"),
        tasks=tasks,
    )


def test_the_escapes_show_controls_and_keep_plain_names_as_they_are() -> None:
    assert visible("a\x1b[31mb\x07\nc") == "a\\x1b[31mb\\x07 c"
    assert escape_markdown("ndcg_at_10") == "ndcg_at_10" and escape_markdown("_x_") == "\\_x\\_"
    assert escape_markdown("org/model@abc123") == "org/model@\u200dabc123"
    assert escape_xml("a\x00b\ufffe") == "a\\x00b\\ufffe"
    assert [escape_csv_cell(v) for v in ("=1+1", "+x", "-x", "@x", " \t=x", "-1.5", "+2", "3e-4", "SciFact")] == [
        "'=1+1",
        "'+x",
        "'-x",
        "'@x",
        "'=x",
        "-1.5",
        "+2",
        "3e-4",
        "SciFact",
    ]


def _board() -> Leaderboard:
    row = LeaderboardRow(
        model=FORMULA + CONTROL,
        revision=f"-rev{CONTROL}",
        per_task={TASK: 0.5, "@SUM(A1)": 0.25},
        per_type={CONTROL: 0.375},
        mean=0.375,
        mean_task_type=0.375,
        rank=1,
    )
    return Leaderboard(
        benchmark=f"+bench{CONTROL}",
        tasks=[TASK, "@SUM(A1)"],
        task_types={TASK: CONTROL, "@SUM(A1)": CONTROL},
        types=[CONTROL],
        rows=[row],
    )


def test_csv_formula_cells_are_neutralised_in_the_header_and_the_body() -> None:
    text = render(_board(), "csv")
    _no_raw_control(text)
    header, body = list(csv.reader(io.StringIO(text)))
    for cell in header + body:
        assert cell[:1] not in {"=", "+", "-", "@"} or cell.replace(".", "").lstrip("-+").isdigit(), cell
    assert f"'{FORMULA}" in header[-2] and header[-1] == "'@SUM(A1)"
    assert body[1].startswith(f"'{FORMULA}") and body[2].startswith("'-rev")
    assert body[-2:] == ["50.00", "25.00"]  # scores are untouched


@pytest.mark.parametrize("fmt", ["md", "html", "latex"])
def test_leaderboard_text_formats_carry_no_raw_control_characters(fmt: str) -> None:
    text = render(_board(), fmt)
    _no_raw_control(text)
    assert "x1b" in text and "owned" in text and "x07" in text  # shown, as escapes


def test_junit_is_well_formed_with_control_characters_in_names(hostile_diff: RunDiff) -> None:
    text = format_junit(hostile_diff)
    _no_raw_control(text)
    suite = ET.fromstring(text.split("?>", 1)[1])
    case = next(suite.iter("testcase"))
    assert case.get("name", "").startswith(FORMULA + "\\x1b]0;owned\\x07")
    assert case.find("failure") is not None and suite.get("failures") == "1"


def test_pr_comment_markdown_has_no_live_mentions_links_or_controls(hostile_diff: RunDiff) -> None:
    text = format_markdown(hostile_diff)
    _no_raw_control(text)
    _no_live_markdown(text)
    assert "@\u200doctocat" in text and "https\u200d://evil.example/x" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len({line.count(" | ") - line.count("\\|") for line in table}) == 1  # no cell split by a name


def test_compare_reports_escape_every_name(hostile_diff: RunDiff) -> None:
    markdown = format_compare_markdown([hostile_diff])
    _no_raw_control(markdown)
    _no_live_markdown(markdown)
    page = format_compare_html([hostile_diff], title=f"title{CONTROL}<script>")
    _no_raw_control(page)
    assert "<script>" not in page and "&lt;b&gt;" in page


def test_the_table_evalkit_run_prints_is_escaped_markdown() -> None:
    rows = [ScoreRow(task=TASK, task_type="Retrieval", splits=("test",), metric="ndcg_at_10", score=0.5)]
    table = format_table(rows, model=MODEL)
    _no_raw_control(table)
    _no_live_markdown(table)
    assert "| Retrieval | =HYPERLINK(evil)\\\\x1b\\]0;owned\\\\x07" in table and "| ndcg_at_10 | 50.00 |" in table


def test_diff_through_the_cli_writes_escaped_files_and_nothing_else(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    ndcg = rng.random(60)
    base = write_run(tmp_path / "runs" / "base", retrieval=ndcg)
    cand = write_run(tmp_path / "runs" / "cand", retrieval=np.clip(ndcg - 0.2, 0, 1))
    meta = next(cand.glob("*/*/model_meta.json"))
    meta.write_text(json.dumps({"name": MODEL, "revision": "abc123"}))
    before = snapshot(tmp_path / "runs")
    out = tmp_path / "out"
    out.mkdir()
    outcome = run_cli(["diff", base, cand, "--markdown", out / "pr.md", "--junit", out / "junit.xml"], capsys)
    assert outcome.code == 1  # the regression, reported, not a crash
    assert snapshot(tmp_path / "runs") == before and sorted(p.name for p in out.iterdir()) == ["junit.xml", "pr.md"]
    markdown = (out / "pr.md").read_text(encoding="utf-8")
    _no_raw_control(markdown)
    _no_live_markdown(markdown)
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    _no_raw_control(junit)
    ET.fromstring(junit.split("?>", 1)[1])


def test_the_diff_text_printed_to_the_terminal_has_no_raw_control_characters(hostile_diff: RunDiff) -> None:
    _no_raw_control(format_text(hostile_diff))
