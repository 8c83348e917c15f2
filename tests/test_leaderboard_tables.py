"""Leaderboard tables people can use: column sets, booktabs LaTeX, transpose, speed columns, the DataFrame, and a
sortable self-contained HTML page in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from run_folders import write_run

from evalkit.cli import main
from evalkit.reports.api import leaderboard
from evalkit.reports.leaderboard_render import render_board

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _runs(root: Path) -> Path:
    rng = np.random.default_rng(0)
    ndcg = 0.3 + 0.4 * rng.random(60)
    gold = 5 * rng.random(60)
    write_run(root, model="org/a_b", retrieval=ndcg + 0.1, sts=(gold, gold + rng.normal(0, 2.0, 60)))
    write_run(root, model="org/c", retrieval=ndcg, sts=(gold, gold + rng.normal(0, 0.5, 60)))
    write_run(root, model="org/d", retrieval=ndcg - 0.1, sts=(gold, gold + rng.normal(0, 1.0, 60)))
    return root


def _set_throughput(root: Path, model: str, texts_per_s: float | None) -> None:
    """Give a model's run records a throughput object (None: an older record, with timings and counters only)."""
    for record_file in (root / model).rglob("*.run.json"):
        record = json.loads(record_file.read_text())
        if texts_per_s is None:
            record["run_settings"] = {
                "device": "cpu",
                "precision": "fp32",
                "embedding_stats": {"encoded": 500, "cached": 0},
            }
            record["timings"] = {"splits": {"test/default": {"encode_corpus_s": 2.0, "encode_queries_s": 0.5}}}
            record["command"], record["started_at"] = ["evalkit", "run"], "2026-01-01T00:00:00"
        else:
            record["throughput"] = {
                "texts_encoded": 1000,
                "texts_cached": 0,
                "tokens_encoded": 20_000,
                "encode_s": 1000 / texts_per_s,
                "peak_rss_mib": 900.0,
                "device": "cuda:0",
                "precision": "bf16",
            }
        record_file.write_text(json.dumps(record))
        if texts_per_s is None:
            break  # cumulative counters: one old record is enough


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return _runs(tmp_path / "runs")


def test_column_sets_and_the_compact_default(runs: Path) -> None:
    board = leaderboard(runs)
    default = render_board(board, "md")
    assert "Retrieval (mean)" in default and "| SciFact |" not in default  # types, not tasks
    assert "| SciFact |" in render_board(board, "md", columns="tasks")
    means = render_board(board, "md", columns="means")
    assert "Mean (Task)" in means and "(mean)" not in means.split("\n\n")[1]
    assert "SciFact" in render_board(board, "csv").splitlines()[0]  # CSV is data: every column by default


def test_latex_is_booktabs_with_caption_label_bold_best_and_escaping(runs: Path, capsys) -> None:
    board = leaderboard(runs)
    text = render_board(board, "latex", caption="Scores & 100%", label="tab:board")
    for line in ("\\toprule", "\\midrule", "\\bottomrule", "\\caption{Scores \\& 100\\%}", "\\label{tab:board}"):
        assert line in text
    assert text.index("\\toprule") < text.index("\\midrule") < text.index("\\bottomrule")
    assert "\\hline" not in text and "org/a\\_b" in text
    body = text[text.index("\\midrule") : text.index("\\bottomrule")].splitlines()[1:]
    cells = [line.removesuffix(" \\\\").split(" & ") for line in body]
    assert [row[2] for row in cells] == ["2/2"] * 3  # how many tasks each row has: the tasks are not shown
    for column in range(3, len(cells[0])):  # one best per score column, and it is the largest value
        bold = [row[column] for row in cells if row[column].startswith("\\textbf{")]
        plain = [float(re.sub(r"[^0-9.]", "", row[column])) for row in cells if row[column]]
        assert len(bold) == 1 and float(bold[0][8:-1]) == max(plain)
    assert text.count("\\begin{") == text.count("\\end{") == 2
    assert main(["leaderboard", str(runs), "--format", "latex", "--label", "bad label}"]) == 2
    assert main(["leaderboard", str(runs), "--caption", "x"]) == 2  # Markdown has no caption
    assert "--caption" in capsys.readouterr().err


def test_transpose_puts_models_in_columns(runs: Path) -> None:
    board = leaderboard(runs)
    text = render_board(board, "latex", transpose_table=True)
    header = text[text.index("\\toprule") : text.index("\\midrule")].splitlines()[1]
    assert header.count(" & ") == len(board.rows) and "org/c (abc123)" in header
    rows = text[text.index("\\midrule") : text.index("\\bottomrule")].splitlines()[1:]
    assert [row.split(" & ")[0] for row in rows][:3] == ["Rank (Borda)", "Tasks", "Mean (Task)"]
    assert all(row.count("\\textbf{") == 1 for row in rows[2:])  # best per measure, now per row
    flipped = list(csv.reader(io.StringIO(render_board(board, "csv", transpose_table=True))))
    assert flipped[0][0] == "Rank (Borda)" and len(flipped[0]) == 1 + len(board.rows)


def test_speed_columns_from_run_records_and_empty_for_published_files(runs: Path, tmp_path: Path) -> None:
    _set_throughput(runs, "org__a_b", 500.0)
    _set_throughput(runs, "org__c", None)
    published = tmp_path / "published"
    shutil.copytree(runs / "org__d", published / "org__d")
    shutil.rmtree(runs / "org__d")
    for side in published.rglob("evalkit"):
        shutil.rmtree(side)
    board = leaderboard([runs, published], speed=True)
    rows = {row.model: row.speed for row in board.rows}
    assert rows["org/a_b"].texts_per_s == pytest.approx(500.0) and rows["org/a_b"].tokens_per_s == pytest.approx(1e4)
    assert (rows["org/a_b"].device, rows["org/a_b"].precision, rows["org/a_b"].peak_rss_mib) == ("cuda:0", "bf16", 900)
    assert rows["org/c"].texts_per_s == pytest.approx(500 / 2.5) and rows["org/c"].source != "recorded"
    assert rows["org/d"] is None
    text = render_board(board, "md")
    assert "| Texts/s | Tokens/s | Peak RSS (MiB) | Device | Precision |" in text
    assert "| **500** | **10000** | **900** | cuda:0 | bf16 |" in text and "| 200 ‡ |" in text


def test_the_dataframe_holds_the_rendered_numbers(runs: Path) -> None:
    _set_throughput(runs, "org__c", 250.0)
    board = leaderboard(runs, rank_intervals=True, resamples=100, speed=True)
    frame = board.to_dataframe(columns="types")
    printed = list(csv.reader(io.StringIO(render_board(board, "csv", columns="types", decimals=4))))
    assert list(frame.columns) == printed[0]
    kinds = {c.header: c.kind for c in board.columns("types")}
    for line, (_, values) in zip(printed[1:], frame.iterrows(), strict=True):
        for header, text in zip(printed[0][3:], line[3:], strict=True):
            value = values[header]
            if kinds[header] == "score":
                assert text == ("" if math.isnan(value) else f"{100 * value:.4f}")
            elif kinds[header] == "rank":
                assert text == str(value)
            elif kinds[header] == "rate" and text:
                assert float(text) == pytest.approx(value, abs=0.05)
    assert "Rank across tasks (low)" in frame.columns and "Texts/s" in frame.columns


@pytest.mark.slow
def test_html_is_sortable_sticky_and_self_contained_in_chromium(runs: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).is_file():
        pytest.fail("Debian's chromium is not installed: run `make test` (its browser step installs it)")
    from playwright.sync_api import sync_playwright

    report = tmp_path / "board.html"
    assert main(["leaderboard", str(runs), "--rank-intervals", "--resamples", "100", "--format", "html",
                 "--out", str(report)]) == 0  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 300})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri())

        def models() -> list[str]:
            return page.locator("#leaderboard tbody tr td:nth-child(2)").all_inner_texts()

        before = models()
        assert len(before) == 3
        page.locator("#leaderboard thead th", has_text="Model").click()  # names ascending
        assert models() == sorted(before) != before
        page.locator("#leaderboard thead th", has_text="Model").click()
        assert models() == sorted(before, reverse=True)
        page.locator("#leaderboard thead th", has_text="STS (mean)").click()  # scores: best first
        column = page.locator("#leaderboard thead th").all_inner_texts().index("STS (mean)") + 1
        sts = [float(v) for v in page.locator(f"#leaderboard tbody tr td:nth-child({column})").all_inner_texts()]
        assert sts == sorted(sts, reverse=True)
        position = page.eval_on_selector("#leaderboard thead th", "h => getComputedStyle(h).position")
        assert position == "sticky"
        browser.close()
    assert requests == [report.as_uri()]
