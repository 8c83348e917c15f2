"""A warm run costs its work: nothing heavy imported when every vector is cached, corpora read back from their
binary form, memos exact or absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalkit.cache import memo
from evalkit.loaders.beir import read_corpus
from evalkit.loaders.corpus_store import (
    CorruptForm,
    decode_corpus,
    encode_corpus,
    read_corpus_stored,
    remembered_content_sha256,
    store_folder,
)
from evalkit.pipeline.warm import LazyEncoder, build_lazily
from evalkit.records import Corpus
from evalkit.registry.models import ModelSpec

HEAVY = ("torch", "transformers", "mteb", "datasets", "sklearn", "scipy.sparse")


def _corpus() -> Corpus:
    return Corpus(
        ids=["d1", "d2", "d3", "ü"],
        titles=["", "Title two", "тема", ""],
        texts=["plain", "emoji 🙂 and tabs\tnewline\n", "lone \ud800 surrogate", ""],
    )


def test_corpus_form_round_trips_exactly() -> None:
    corpus = _corpus()
    assert decode_corpus(encode_corpus(corpus, "k"), "k") == corpus


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],  # truncated
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # a flipped bit in the texts
        lambda data: data[:40] + b"\x00" * 8 + data[48:],  # an offset zeroed
        lambda data: b"not a form at all",
        lambda data: data.replace(b'"key": "k"', b'"key": "x"'),  # another key's form
    ],
)
def test_damaged_form_is_refused(damage: Any) -> None:
    with pytest.raises(CorruptForm):
        decode_corpus(damage(encode_corpus(_corpus(), "k")), "k")


def _write_corpus(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def test_corpus_is_parsed_once_and_a_corrupted_form_is_parsed_again(tmp_path: Path) -> None:
    source = tmp_path / "corpus.jsonl"
    _write_corpus(source, [{"_id": "a", "title": "T", "text": "first"}, {"_id": "b", "text": "second"}])
    parses: list[Path] = []

    def parse(path: Path) -> Corpus:
        parses.append(path)
        return read_corpus(path)

    first, file_first = read_corpus_stored(source, parse, cache_root=tmp_path / "cache")
    second, file_second = read_corpus_stored(source, parse, cache_root=tmp_path / "cache")
    assert len(parses) == 1 and first == second == read_corpus(source) and file_first == file_second
    (form,) = store_folder(tmp_path / "cache").glob("*.bin")
    form.write_bytes(form.read_bytes()[:-2])  # truncated: detected, parsed again, rewritten
    third, _ = read_corpus_stored(source, parse, cache_root=tmp_path / "cache")
    assert len(parses) == 2 and third == first
    _write_corpus(source, [{"_id": "a", "text": "edited"}])  # another source: another key, never the old form
    edited, _ = read_corpus_stored(source, parse, cache_root=tmp_path / "cache")
    assert len(parses) == 3 and edited.texts == ["edited"]


def test_content_checksum_is_remembered_only_for_the_corpus_read(tmp_path: Path) -> None:
    source = tmp_path / "corpus.jsonl"
    _write_corpus(source, [{"_id": "a", "text": "x"}])
    corpus, _ = read_corpus_stored(source, read_corpus, cache_root=tmp_path / "cache")
    calls: list[int] = []

    def compute(c: Corpus) -> str:
        calls.append(1)
        return f"sum-{len(c)}"

    assert remembered_content_sha256(corpus, "scheme", compute) == "sum-1"
    again, _ = read_corpus_stored(source, read_corpus, cache_root=tmp_path / "cache")
    assert remembered_content_sha256(again, "scheme", compute) == "sum-1" and len(calls) == 1
    corpus.ids.append("b")  # resized: no longer the corpus that was read
    corpus.titles.append("")
    corpus.texts.append("y")
    assert remembered_content_sha256(corpus, "scheme", compute) == "sum-2" and len(calls) == 2


def test_memo_is_exact_or_absent(tmp_path: Path) -> None:
    value = {"t": (1, "a"), "p": Path("/x"), "n": None, "l": [1.5, {"d": True}]}
    key = memo.memo_key("test", {"name": "x"})
    assert memo.write_memo(tmp_path, "test", key, value)
    assert memo.read_memo(tmp_path, "test", key) == (True, value)
    assert memo.read_memo(tmp_path, "test", memo.memo_key("test", {"name": "y"})) == (False, None)
    path = memo.memo_path(tmp_path, "test", key)
    path.write_text(path.read_text().replace("1.5", "2.5"))  # edited: fails its checksum
    assert memo.read_memo(tmp_path, "test", key) == (False, None)
    assert not memo.write_memo(tmp_path, "test", key, {"s": {1, 2}})  # a set does not round-trip: not memoised


class _FakeEncoder:
    """Counts its builds; stands for an adapter whose construction is slow (torch, weights)."""

    builds = 0
    runtime = "torch"

    def __init__(self, spec: ModelSpec) -> None:
        type(self).builds += 1
        self.spec = spec
        from evalkit.encoders.protocol import TOKEN_DENSE

        self.capabilities = TOKEN_DENSE

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.spec.name, "weights_sha256": "abc", "runtime": self.runtime}

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [[len(t)] for t in texts]


def test_lazy_encoder_builds_only_when_a_text_must_be_encoded(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    spec = ModelSpec(name="fake/model", adapter="hf", local_path=folder)
    encoding = type("Encoding", (), {"device": "cpu", "precision": "fp32", "runtime": "auto"})()
    _FakeEncoder.builds = 0
    cold = build_lazily(spec, encoding, lambda: _FakeEncoder(spec), artifact_dir=tmp_path / "cache")
    assert isinstance(cold, LazyEncoder) and cold.built and _FakeEncoder.builds == 1
    fingerprint = cold.fingerprint()  # writes the memo
    warm = build_lazily(spec, encoding, lambda: _FakeEncoder(spec), artifact_dir=tmp_path / "cache")
    assert not warm.built and warm.fingerprint() == fingerprint and warm.runtime == "torch"
    assert warm.capabilities == cold.capabilities
    assert warm.prepare(["a", "b"], "q: ") == cold.prepare(["a", "b"], "q: ")
    assert not hasattr(warm, "no_such_attribute") and not warm.built
    tokenize = warm.tokenize  # taken up front, as the core does: still not built
    assert not warm.built and tokenize(["abc"]) == [[3]] and warm.built and _FakeEncoder.builds == 2
    (folder / "config.json").write_text('{"changed": 1}')  # a model file changed: the memo is not used
    rebuilt = build_lazily(spec, encoding, lambda: _FakeEncoder(spec), artifact_dir=tmp_path / "cache")
    assert rebuilt.built


def _tiny_scifact(mirror: Path, folder: Path) -> Path:
    """SciFact's first 20 judged queries with their judged documents and 200 more: a real slice, run in seconds."""
    source, task = mirror / "SciFact", folder / "SciFact"
    (task / "qrels").mkdir(parents=True)
    lines = (source / "qrels" / "test.tsv").read_text().splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:] if line.strip()]
    queries = list(dict.fromkeys(r[0] for r in rows))[:20]
    rows = [r for r in rows if r[0] in queries]
    docs = {r[1] for r in rows}
    kept = []
    with (source / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            doc_id = json.loads(line)["_id"]
            if doc_id in docs or len(kept) < 200:
                kept.append(line)
    (task / "corpus.jsonl").write_text("".join(kept), encoding="utf-8")
    with (source / "queries.jsonl").open(encoding="utf-8") as handle:
        picked = [line for line in handle if json.loads(line)["_id"] in queries]
    (task / "queries.jsonl").write_text("".join(picked), encoding="utf-8")
    (task / "qrels" / "test.tsv").write_text("\n".join([header, *("\t".join(r) for r in rows)]) + "\n")
    return folder


_PROBE = """
import json, sys
from evalkit.cli import main
code = main(sys.argv[1:])
print("MODULES=" + json.dumps(sorted(m for m in sys.modules if m in {heavy})))
sys.exit(code)
"""


def _run(args: list[str], cwd: Path) -> tuple[list[str], dict[str, Any]]:
    script = _PROBE.format(heavy=repr(set(HEAVY)))
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=cwd, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES="))
    (result_file,) = (cwd / "out").rglob("SciFact.json")
    return json.loads(line.removeprefix("MODULES=")), json.loads(result_file.read_text())["scores"]


@pytest.mark.slow
def test_warm_run_imports_no_torch_transformers_or_mteb_and_scores_the_same(mirror: Path, tmp_path: Path) -> None:
    data = _tiny_scifact(mirror, tmp_path / "data")
    args = ["run", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--tasks", "SciFact"]
    args += ["--data-dir", str(data), "--output", "out", "--cache-dir", str(tmp_path / "cache")]
    cold_modules, cold_scores = _run(args, tmp_path)
    warm_modules, warm_scores = _run(args, tmp_path)
    assert "torch" in cold_modules  # the cold run encoded
    assert warm_modules == [], f"a warm run imported {warm_modules}"
    assert warm_scores == cold_scores
