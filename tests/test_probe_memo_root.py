"""A run that names its cache folder writes evalkit's files there and nowhere else: not the runtime probe's memo,
not the ONNX export, not the memos of resolved models, task metadata or parsed corpora (a read-only home, a
sandbox or a CI scratch dir must see no write outside the folders the run named)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cache.memo import memo_root, read_memo, run_cache_root, write_memo
from evalkit.cli import main
from evalkit.loaders.corpus_store import store_folder

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
THIRD_PARTY = ("Microsoft/DeveloperTools/", "intel/")  # onnxruntime's and OpenVINO's telemetry ids: not evalkit's


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every default location of evalkit's cache folder, pointed into one folder the run never names."""
    home = tmp_path / "elsewhere"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg"))
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(home / "evalkit"))
    return home


def evalkit_files(folder: Path) -> list[str]:
    names = (str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return sorted(name for name in names if not any(f"/{part}" in f"/{name}" for part in THIRD_PARTY))


def test_memos_follow_the_run_cache_root(tmp_path: Path, elsewhere: Path) -> None:
    cache = tmp_path / "cache"
    assert memo_root() == elsewhere / "evalkit" / "memo"  # no run: the default folder
    with run_cache_root(cache):
        assert memo_root() == cache / "memo" and store_folder() == cache / "corpora"
        assert write_memo(memo_root(), "kind", "ab" * 20, {"answer": 42})
        assert read_memo(cache / "memo", "kind", "ab" * 20) == (True, {"answer": 42})
        with run_cache_root(None):  # None changes nothing
            assert memo_root() == cache / "memo"
    assert memo_root() == elsewhere / "evalkit" / "memo"  # restored on exit
    assert memo_root(tmp_path / "named") == tmp_path / "named" / "memo"  # a folder given always wins
    assert evalkit_files(elsewhere) == []


def toy_task(folder: Path) -> Path:
    data = folder / "data"
    (data / "qrels").mkdir(parents=True)
    docs = ["cats eat fish", "dogs chase cats", "the team won the cup", "rain falls on the plain"]
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    (data / "queries.jsonl").write_text('{"_id": "q0", "text": "what do cats eat"}\n{"_id": "q1", "text": "who won"}\n')
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td2\t1\n")
    specs = folder / "specs"
    specs.mkdir()
    (specs / "ToyMemo.yaml").write_text(
        f"name: ToyMemo\ntype: Retrieval\nlanguages: [eng-Latn]\neval_splits: [test]\ndata_dir: {data}\n"
    )
    return specs


@pytest.mark.slow  # a real run with --runtime auto: the probe exports and times ONNX (~20 s on 2 shared cores)
def test_a_run_with_a_named_cache_dir_writes_nothing_in_the_default_cache(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(toy_task(tmp_path)))
    cache = tmp_path / "cache"
    args = ["run", "--model", MODEL, "--tasks", "ToyMemo", "--quiet", "--output", str(tmp_path / "out")]
    with run_cache_root(cache):  # what evalkit.runner.run enters for the run (the cache folder, or its scratch)
        assert main([*args, "--cache-dir", str(cache), "--runtime", "auto"]) == 0
    (record_file,) = (tmp_path / "out").rglob("ToyMemo.run.json")
    choice = json.loads(record_file.read_text())["run_settings"]["runtime_choice"]
    assert evalkit_files(elsewhere) == []
    assert choice["reason"] == "probed"  # ONNX Runtime is a candidate beside torch: the probe ran, its memo is here
    assert len(list((cache / "runtime-probe").glob("*.json"))) == 1
