"""Issue 12, class 2: ``evalkit diff`` as a CI gate. Exit 1 means a significant regression and nothing else.

A bad option is refused before any run is read; a file that cannot be judged (malformed scores, a corrupt .gz,
rows without a split, a non-numeric main score) is exit 2 with one line naming the file, never a traceback, never
exit 1 (what CI reads as "regression") and never exit 0.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hostile import run_cli, snapshot
from run_folders import write_run

from evalkit.reports.diff import DiffSettings, InvalidSettingError


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """A baseline and a candidate whose SciFact really dropped (exit 1 with the default options)."""
    rng = np.random.default_rng(0)
    ndcg = rng.random(200)
    gold = rng.random(40) * 5
    cosine = gold + rng.normal(0, 1.0, 40)
    worse = np.clip(ndcg - 0.08 + rng.normal(0, 0.03, 200), 0, 1)
    base = write_run(tmp_path / "base", retrieval=ndcg, sts=(gold, cosine))
    cand = write_run(tmp_path / "cand", retrieval=worse, sts=(gold, cosine))
    return base, cand


def test_a_real_regression_exits_1(runs: tuple[Path, Path], capsys) -> None:
    outcome = run_cli(["diff", *runs, "--resamples", "500"], capsys)
    assert outcome.code == 1 and outcome.stdout.strip().splitlines()[-1].startswith("REGRESSION")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-drop", "nan"),
        ("--max-drop", "inf"),
        ("--max-drop", "-1"),
        ("--alpha", "5"),
        ("--alpha", "0"),
        ("--alpha", "1"),
        ("--alpha", "nan"),
        ("--resamples", "0"),
        ("--resamples", "-3"),
        ("--resamples", "1000000000"),
        ("--seed", "-1"),
    ],
)
@pytest.mark.parametrize("command", ["diff", "compare"])
def test_a_bad_option_is_refused_before_any_file_is_read(
    runs: tuple[Path, Path], tmp_path: Path, capsys, command: str, option: str, value: str
) -> None:
    missing = tmp_path / "no-such-run"  # were the runs read first, this would be the error
    argv = ["diff", missing, missing] if command == "diff" else ["compare", missing, "--baseline", missing]
    outcome = run_cli([*argv, option, value], capsys)
    assert outcome.code == 2 and f"field '{option}'" in outcome.error_line
    assert "no-such-run" not in outcome.error_line


@pytest.mark.parametrize(
    "settings",
    [
        {"alpha": 5.0},
        {"alpha": math.nan},
        {"max_drop": math.nan},
        {"max_drop": -0.5},
        {"resamples": 0},
        {"resamples": 2.5},
        {"seed": -1},
        {"test": "coin-flip"},
        {"alpha": True},
    ],
)
def test_the_library_validates_the_settings_too(settings: dict[str, object]) -> None:
    with pytest.raises(InvalidSettingError) as caught:
        DiffSettings(**settings)  # type: ignore[arg-type]
    assert caught.value.field == next(iter(settings))


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_rows(path: Path, change: Callable[[list[dict]], None]) -> None:
    with gzip.open(path, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    change(rows)
    with gzip.open(path, "wt") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)


def _cell(data: dict) -> dict:
    return data["scores"]["test"][0]


def _result(change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda path: _edit_json(path, change)


def _rows(change: Callable[[list[dict]], object]) -> Callable[[Path], None]:
    return lambda path: _edit_rows(path, change)


def _raw(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


RESULT, ROWS, RECORD = "SciFact.json", "SciFact.per_item.jsonl.gz", "SciFact.run.json"
FIRST = "scores.test[0]"
BROKEN: dict[str, tuple[str, Callable[[Path], None], str | None]] = {
    "scores of the wrong shape": (RESULT, _result(lambda d: d.update(scores={"test": {}})), "scores.test"),
    "a cell that is not an object": (RESULT, _result(lambda d: d["scores"].update(test=[3])), FIRST),
    "a non-numeric main score": (RESULT, _result(lambda d: _cell(d).update(main_score="0.5")), f"{FIRST}.main_score"),
    "a boolean main score": (RESULT, _result(lambda d: _cell(d).update(main_score=True)), f"{FIRST}.main_score"),
    "a subset twice": (RESULT, _result(lambda d: d["scores"]["test"].append(_cell(d))), "scores.test[1].hf_subset"),
    "not JSON": (RESULT, _raw(b'{"task_name": '), None),
    "not UTF-8": (RESULT, _raw(b'{"task_name": "\xff"}'), None),
    "a corrupt gzip": (ROWS, _raw(b"\x1f\x8b\x08\x00garbage"), None),
    "a truncated gzip": (ROWS, lambda p: p.write_bytes(p.read_bytes()[:40]), None),
    "not gzip at all": (ROWS, _raw(b"plain text\n"), None),
    "rows without a split": (ROWS, _rows(lambda rows: rows[3].pop("split")), "split"),
    "a row that is a list": (ROWS, _rows(lambda rows: rows.insert(0, [1])), None),
    "a non-numeric item score": (ROWS, _rows(lambda rows: rows[5].update(ndcg_at_10="x")), "ndcg_at_10"),
    "an item scored twice": (ROWS, _rows(lambda rows: rows.append(rows[0])), "id"),
    "a run record of the wrong shape": (RECORD, _result(lambda d: d.update(data={"files": "x"})), "data.files"),
    "a data file without a path": (RECORD, _result(lambda d: d["data"]["files"].append({})), "data.files[1]"),
    "a run record that is a list": (RECORD, _raw(b"[]"), None),
    "model metadata that is not JSON": ("model_meta.json", _raw(b"\x00\x01"), None),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_file_that_cannot_be_judged_exits_2_naming_it(runs: tuple[Path, Path], capsys, case: str) -> None:
    base, cand = runs
    file_name, damage, field = BROKEN[case]
    damage(next(cand.rglob(file_name)))
    before = snapshot(cand.parent)
    outcome = run_cli(["diff", base, cand, "--resamples", "200"], capsys)
    assert outcome.code == 2, case
    assert file_name in outcome.error_line, case
    if field is not None:
        assert f"field '{field}'" in outcome.error_line, case
    assert snapshot(cand.parent) == before


def test_a_line_number_points_at_the_bad_row(runs: tuple[Path, Path], capsys) -> None:
    base, cand = runs
    _edit_rows(next(cand.rglob("SciFact.per_item.jsonl.gz")), lambda rows: rows[6].pop("split"))
    outcome = run_cli(["diff", base, cand], capsys)
    assert outcome.code == 2 and "SciFact.per_item.jsonl.gz:7: field 'split'" in outcome.error_line


@pytest.mark.parametrize("side", ["base", "cand"])
@pytest.mark.parametrize("value", [None, math.nan])
def test_a_missing_main_score_is_no_verdict(tmp_path: Path, capsys, side: str, value: float | None) -> None:
    """Without per-item scores a task is judged on its file's score: NaN/null on either side is exit 2, not 0/1."""
    runs = {name: write_run(tmp_path / name, retrieval=np.full(10, 0.5)) for name in ("base", "cand")}
    for run in runs.values():
        next(run.rglob("SciFact.per_item.jsonl.gz")).unlink()
    _edit_json(next(runs[side].rglob("SciFact.json")), lambda d: _cell(d).update(main_score=value))
    outcome = run_cli(["diff", runs["base"], runs["cand"]], capsys)
    assert outcome.code == 2 and "SciFact.json" in outcome.error_line and "no finite main score" in outcome.error_line


def test_constant_predictions_are_a_regression_not_an_ok(tmp_path: Path, capsys) -> None:
    """A Spearman over constant cosines is undefined; the paired test scores it 0, so a broken model regresses."""
    gold = np.random.default_rng(1).random(30) * 5
    base = write_run(tmp_path / "base", sts=(gold, gold + 0.1))
    with pytest.warns(match="constant"):  # the file's own main score is NaN; the per-item scores are what is judged
        cand = write_run(tmp_path / "cand", sts=(gold, np.full(30, 0.3)))
    outcome = run_cli(["diff", base, cand, "--resamples", "100"], capsys)
    assert outcome.code == 1 and "STSBenchmark" in outcome.stdout.strip().splitlines()[-1]


def test_a_cell_of_one_item_is_judged_on_the_drop_alone(tmp_path: Path, capsys) -> None:
    base = write_run(tmp_path / "base", retrieval=np.array([0.9]))
    cand = write_run(tmp_path / "cand", retrieval=np.array([0.1]))
    outcome = run_cli(["diff", base, cand], capsys)
    assert outcome.code == 1 and "REGRESSION (untested)" in outcome.stdout


def test_an_unwritable_report_path_exits_2(runs: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    outcome = run_cli(["diff", *runs, "--resamples", "100", "--markdown", folder], capsys)
    assert outcome.code == 2 and "a-folder" in outcome.error_line
