"""The comparison report in a real browser: headless Debian Chromium driven by Playwright (``make test`` installs both).

It checks what a reader sees: the table's rows, both charts laid out with visible marks, a model name that is a
script rendered as text (no dialog opens), no request leaves the page, and a screenshot that is not blank.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from run_folders import write_run
from test_compare_speed import add_throughput

from evalkit.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EVIL = "<script>alert(1)</script>"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail("Debian's chromium is not installed: run `make test` (its browser step installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.mark.slow
def test_compare_report_renders_table_and_charts_in_chromium(tmp_path: Path, browser) -> None:
    rng = np.random.default_rng(0)
    gold = rng.random(300) * 5
    cosine = gold + rng.normal(0, 1.0, 300)
    ndcg = rng.random(300)
    base = write_run(tmp_path / "base", retrieval=ndcg, sts=(gold, cosine))
    better = write_run(
        tmp_path / "a", model=EVIL, revision="r2", retrieval=np.clip(ndcg + 0.06, 0, 1), sts=(gold, cosine)
    )
    worse = write_run(tmp_path / "b", revision="r3", retrieval=ndcg, sts=(gold, gold + rng.normal(0, 2.0, 300)))
    for root, texts_per_s in ((base, 100.0), (better, 250.0)):  # run b has no throughput: "n/a", not plotted
        add_throughput(root, texts_per_s)
    report = tmp_path / "report.html"
    assert main(["compare", str(better), str(worse), "--baseline", str(base), "--html", str(report)]) == 0

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())

    assert page.locator("#comparison tbody tr").count() == 4  # two tasks, the better/same/worse tally, texts/s
    assert page.locator("#comparison tbody tr").last.inner_text().split("\t")[1:] == ["100", "250 (×2.50)", "n/a"]
    headers = page.locator("#comparison thead th").all_inner_texts()
    assert EVIL + "@r2" in headers  # the script is shown as text
    assert dialogs == []  # ... and never ran
    charts = page.locator("svg.chart")
    assert charts.count() == 4  # per-task deltas for each run, per-type deltas, speed versus score
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
    assert page.locator("svg circle.point").count() == 4 + 4  # 2 runs × 2 tasks, then 2 runs × 2 task types
    assert page.locator("svg line.ci").count() == 4 + 4  # every task and type delta has its interval
    assert page.locator("svg circle.run-point").count() == 2  # the baseline and run a; run b: speed n/a
    assert page.locator("svg text.run-label").all_text_contents() == ["baseline", EVIL + "@r2"]
    speed = page.locator("#speed tbody tr").all_inner_texts()
    assert "×2.50" in speed[1] and "n/a" in speed[2] and "0.0" not in speed[2].split("\t")[1]
    marked = page.locator("#comparison td.up, #comparison td.down").count()
    assert marked == 2  # SciFact better for run a, STSBenchmark worse for run b
    assert requests == [report.as_uri()]  # self-contained: nothing else is fetched

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()
