"""Hostile inputs, class 7: checks that belong before the compute are made before it.

Each bad option is refused with exit 2 and one line, before any data is loaded or any model is built: the tests
make loading data or building a model fail loudly (an internal error, exit 70) if the run gets that far.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hostile import run_cli, snapshot

import evalkit.pipeline.models
import evalkit.pipeline.plan
from evalkit import preflight
from evalkit.errors import EXIT_INTERNAL

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading task data or building an encoder is a test failure here (it would surface as exit 70)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run got past its up-front checks")

    monkeypatch.setattr(evalkit.pipeline.plan, "load_task_data", refuse)
    monkeypatch.setattr(evalkit.pipeline.models, "build_encoder", refuse)


def _run(tmp_path: Path, mirror: Path, *extra: str) -> list[str]:
    return [
        "run", "--model", MODEL, "--tasks", "STSBenchmark", "--data-dir", str(mirror), "--no-hub", "--quiet",
        "--cache-dir", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--token-budget", "-5"], "--token-budget must be a positive integer"),
        (["--candidates", "0"], "--candidates must be a positive integer"),
        (["--rerank-top-k", "0"], "--rerank-top-k must be a positive integer"),
        (["--shard-size", "0"], "--shard-size must be a positive integer"),
        (["--device", "gpu"], "expected cpu, cuda, cuda:N"),
        (["--device", "cpu,cuda:0"], "--device"),
        (["--device", "cuda:97" if torch.cuda.is_available() else "cuda"], "--device"),
        (["--max-length", "100000"], "beyond the model's 512 positions"),
        (["--max-length", "0"], "max_length must be a positive integer"),
        (["--retrieval", "hybrid", "--sparse-model", ".."], "not a safe name"),
        (["--sparse-model", "bm25"], "applies to --retrieval hybrid only"),
    ],
)
def test_bad_options_are_refused_before_any_work(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], no_compute: None, extra: list[str], expected: str
) -> None:
    before = snapshot(tmp_path)
    outcome = run_cli(_run(tmp_path, mirror, *extra), capsys)
    assert outcome.code == 2, outcome.stderr
    assert expected in outcome.error_line
    assert snapshot(tmp_path) == before  # no output, no cache folder: nothing was written


def test_output_that_is_a_file(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], no_compute: None
) -> None:
    (tmp_path / "out").write_text("a file, not a folder")
    outcome = run_cli(_run(tmp_path, mirror), capsys)
    assert outcome.code == 2
    assert "--output" in outcome.error_line and "is a file" in outcome.error_line
    assert (tmp_path / "out").read_text() == "a file, not a folder"
    assert not (tmp_path / "cache").exists()


def test_output_that_cannot_be_created(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], no_compute: None
) -> None:
    (tmp_path / "blocker").write_text("x")
    args = _run(tmp_path, mirror)
    args[args.index("--output") + 1] = str(tmp_path / "blocker" / "results")
    outcome = run_cli(args, capsys)
    assert outcome.code == 2
    assert "cannot be created" in outcome.error_line and "blocker" in outcome.error_line


def test_cache_folder_that_is_a_file(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], no_compute: None
) -> None:
    (tmp_path / "cache").write_text("not a cache")
    outcome = run_cli(_run(tmp_path, mirror), capsys)
    assert outcome.code == 2
    assert "--cache-dir" in outcome.error_line and "is a file" in outcome.error_line
    assert not (tmp_path / "out").exists()


def test_read_only_output_and_cache(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], no_compute: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests run as root in CI, for whom chmod 555 changes nothing; os.access is what the check asks, so the
    # file system's answer is stood in for here.
    for folder in ("out", "cache"):
        (tmp_path / folder).mkdir()
    real_access = os.access
    for read_only, option in (("out", "--output"), ("cache", "--cache-dir")):
        target = str(tmp_path / read_only)
        monkeypatch.setattr(
            preflight.os, "access", lambda p, mode, t=target: False if str(p) == t else real_access(p, mode)
        )
        outcome = run_cli(_run(tmp_path, mirror), capsys)
        assert outcome.code == 2
        assert option in outcome.error_line and "not writable" in outcome.error_line
    assert not any((tmp_path / "out").iterdir()) and not any((tmp_path / "cache").iterdir())


def test_no_cache_skips_the_cache_folder_check(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], no_compute: None
) -> None:
    (tmp_path / "cache").write_text("not a cache")
    outcome = run_cli([*_run(tmp_path, mirror), "--no-cache", "--batch-size", "0"], capsys)
    assert outcome.code == 2 and "--batch-size" in outcome.error_line  # the next check, not the cache's


def test_an_internal_error_has_its_own_exit_code(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug \x1b[31m in evalkit")

    monkeypatch.setattr(evalkit.pipeline.plan, "load_task_data", bug)
    outcome = run_cli(_run(tmp_path, mirror), capsys)
    assert outcome.code == EXIT_INTERNAL  # never 1 (diff: regression) nor 2 (bad input)
    line = outcome.error_line
    assert "internal error" in line and "ZeroDivisionError" in line and "\x1b" not in line
    saved = Path(line.rsplit("traceback saved to ", 1)[1])
    assert "Traceback" in saved.read_text() and "ZeroDivisionError" in saved.read_text()
    saved.unlink()

    debug = run_cli(["--debug", *_run(tmp_path, mirror)], capsys)
    assert debug.code == EXIT_INTERNAL and "Traceback (most recent call last)" in debug.stderr
    Path(debug.stderr.rsplit("traceback saved to ", 1)[1].strip()).unlink()


def test_position_limits(tmp_path: Path) -> None:
    import json

    assert preflight.position_limit(None) is None
    assert preflight.position_limit(tmp_path / "nonexistent") is None
    configs = {
        "bert": ({"model_type": "bert", "max_position_embeddings": 512}, 512),
        "xlmr": ({"model_type": "xlm-roberta", "max_position_embeddings": 8194, "pad_token_id": 1}, 8192),
        "qwen": ({"model_type": "qwen2", "max_position_embeddings": 32768}, None),  # rotary: no hard limit
        "odd": ({"model_type": "bert", "max_position_embeddings": "512"}, None),
        "list": ([1, 2], None),
    }
    for name, (config, limit) in configs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        assert preflight.position_limit(tmp_path / name) == limit, name
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_bytes(b"{not json")
    assert preflight.position_limit(tmp_path / "bad") is None  # the model loader names that file itself
