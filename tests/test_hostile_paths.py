"""Issue 12, class 1: names read from files never become paths outside the folder they belong to.

``submit`` builds ``<out>/results/<org>__<model>/<revision>`` from ``model_meta.json``; ``diff`` builds
``evalkit/<task_name>.per_item.jsonl.gz`` from a result file; the leaderboard walks revision folders. Each test plants
a hostile name, runs the command as a user would, and checks: exit 2, one line naming the file and field, and no
file outside the output folder written, removed or changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hostile import run_cli, snapshot
from run_folders import write_run

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results" / "sentence-transformers__all-MiniLM-L6-v2"
MODEL_FOLDER = "sentence-transformers__all-MiniLM-L6-v2"


def _submission(root: Path, **meta_changes: object) -> Path:
    """A small run folder (two task files) to submit, its model_meta.json changed as given."""
    (source,) = COMMITTED.iterdir()
    run = root / "run" / MODEL_FOLDER / source.name
    run.mkdir(parents=True)
    for name in ("STSBenchmark.json", "SciFact.json"):
        shutil.copy(source / name, run / name)
    meta = {**json.loads((source / "model_meta.json").read_text()), **meta_changes}
    (run / "model_meta.json").write_text(json.dumps(meta))
    return root / "run"


def _world(tmp_path: Path) -> tuple[Path, Path]:
    """An output folder holding another revision of the model, and a precious folder beside it."""
    out = tmp_path / "repo"
    other = out / "results" / MODEL_FOLDER / "0123other"
    other.mkdir(parents=True)
    (other / "STSBenchmark.json").write_text("{}")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep me")
    return out, precious


@pytest.mark.parametrize(
    "revision", ["../../precious", "..", ".", "/abs/olute", f"{'a' * 300}", "x/../../..", "-rf", "a\nb", "a\\b"]
)
def test_submit_refuses_a_revision_that_is_not_one_folder_name(tmp_path: Path, capsys, revision: str) -> None:
    out, _ = _world(tmp_path)
    run = _submission(tmp_path, revision=revision)
    before = snapshot(tmp_path)
    outcome = run_cli(["submit", run, "--out", out], capsys)
    assert outcome.code == 2
    assert "model_meta.json" in outcome.error_line and "field 'revision'" in outcome.error_line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["../precious", "org/..", "a/b/c", "/abs", "org/", "org/na\x00me", 7, None])
def test_submit_refuses_a_model_name_that_is_not_org_slash_name(tmp_path: Path, capsys, name: object) -> None:
    out, _ = _world(tmp_path)
    run = _submission(tmp_path, name=name)
    before = snapshot(tmp_path)
    outcome = run_cli(["submit", run, "--out", out], capsys)
    assert outcome.code == 2 and "field 'name'" in outcome.error_line
    assert snapshot(tmp_path) == before


def test_submit_replaces_only_its_own_unchanged_submission(tmp_path: Path, capsys) -> None:
    out, _ = _world(tmp_path)
    run = _submission(tmp_path)
    assert run_cli(["submit", run, "--out", out], capsys).code == 0
    (target,) = (p for p in (out / "results" / MODEL_FOLDER).iterdir() if p.name != "0123other")
    assert run_cli(["submit", run, "--out", out], capsys).code == 0  # its own, unchanged: replaced
    assert sorted(p.name for p in (out / "results" / MODEL_FOLDER).iterdir()) == sorted(["0123other", target.name])

    (target / "NOTES.md").write_text("added by hand")  # no longer what submit wrote: left alone
    before = snapshot(tmp_path)
    outcome = run_cli(["submit", run, "--out", out], capsys)
    assert outcome.code == 2 and "not written by evalkit submit" in outcome.error_line
    assert snapshot(tmp_path) == before


def test_submit_never_replaces_a_folder_it_did_not_create(tmp_path: Path, capsys) -> None:
    out, _ = _world(tmp_path)
    run = _submission(tmp_path)
    (revision,) = (p.name for p in (run / MODEL_FOLDER).iterdir())
    theirs = out / "results" / MODEL_FOLDER / revision
    theirs.mkdir()
    (theirs / "STSBenchmark.json").write_text('{"someone": "else"}')
    before = snapshot(tmp_path)
    outcome = run_cli(["submit", run, "--out", out], capsys)
    assert outcome.code == 2 and revision in outcome.error_line
    assert snapshot(tmp_path) == before


def test_submit_does_not_write_through_a_link_out_of_the_output_folder(tmp_path: Path, capsys) -> None:
    out, precious = _world(tmp_path)
    shutil.rmtree(out / "results" / MODEL_FOLDER)
    (out / "results" / MODEL_FOLDER).symlink_to(precious, target_is_directory=True)
    run = _submission(tmp_path)
    before = snapshot(precious)
    outcome = run_cli(["submit", run, "--out", out], capsys)
    assert outcome.code == 2 and MODEL_FOLDER in outcome.error_line
    assert snapshot(precious) == before


def _run_pair(tmp_path: Path) -> tuple[Path, Path]:
    scores = np.random.default_rng(0).random(30)
    return write_run(tmp_path / "base", retrieval=scores), write_run(tmp_path / "cand", retrieval=scores)


def _result_file(run: Path) -> Path:
    return next(run.rglob("SciFact.json"))


@pytest.mark.parametrize("task_name", ["../../../outside/SciFact", "/abs/SciFact", "..", "", "Sci\x1bFact", 12])
def test_diff_refuses_a_task_name_that_is_not_one_file_name(tmp_path: Path, capsys, task_name: object) -> None:
    base, cand = _run_pair(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(next(cand.rglob("SciFact.per_item.jsonl.gz")), outside / "SciFact.per_item.jsonl.gz")
    for run in (base, cand):
        path = _result_file(run)
        path.write_text(json.dumps({**json.loads(path.read_text()), "task_name": task_name}))
    before = snapshot(tmp_path)
    outcome = run_cli(["diff", base, cand], capsys)
    assert outcome.code == 2
    assert "SciFact.json" in outcome.error_line and "field 'task_name'" in outcome.error_line
    assert snapshot(tmp_path) == before


def test_diff_does_not_read_side_files_through_a_link_out_of_the_run(tmp_path: Path, capsys) -> None:
    base, cand = _run_pair(tmp_path)
    side = next(cand.rglob("evalkit"))
    outside = tmp_path / "outside"
    shutil.move(side, outside)
    side.symlink_to(outside, target_is_directory=True)
    outcome = run_cli(["diff", base, cand], capsys)
    assert outcome.code == 2 and "leads outside" in outcome.error_line


@pytest.mark.parametrize("meta", ['{"name": ["org", "model"]}', '{"name": "org/m", "revision": {"r": 1}}', "[1]"])
def test_diff_and_leaderboard_refuse_model_metadata_of_the_wrong_shape(tmp_path: Path, capsys, meta: str) -> None:
    base, cand = _run_pair(tmp_path)
    next(cand.rglob("model_meta.json")).write_text(meta)
    for argv in (["diff", base, cand], ["leaderboard", cand]):
        outcome = run_cli(argv, capsys)
        assert outcome.code == 2 and "model_meta.json" in outcome.error_line, argv


def test_leaderboard_refuses_a_revision_folder_linked_from_elsewhere(tmp_path: Path, capsys) -> None:
    scores = np.random.default_rng(0).random(30)
    write_run(tmp_path / "elsewhere", retrieval=scores, revision="secret")
    model = tmp_path / "results" / "org__model"
    model.mkdir(parents=True)
    write_run(tmp_path / "results", retrieval=scores, revision="mine")
    (model / "linked").symlink_to(tmp_path / "elsewhere" / "org__model" / "secret", target_is_directory=True)
    outcome = run_cli(["leaderboard", model], capsys)
    assert outcome.code == 2 and "leads outside" in outcome.error_line
