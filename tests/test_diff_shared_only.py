"""``diff --shared-only`` and data identity by loaded content (mirror, hub or subset file alike)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from run_folders import write_run

from evalkit.cli import main
from evalkit.records import Corpus, PairSplit, Queries, RetrievalSplit, SourceFile, TaskData
from evalkit.reports.api import diff
from evalkit.reports.identity import NotComparableError
from evalkit.results.run_record import content_checksum

RNG = np.random.default_rng(0)
RETRIEVAL = RNG.uniform(0, 1, 50)
GOLD = RNG.uniform(0, 5, 50)
STS = (GOLD, GOLD + RNG.normal(0, 1, 50))


def _record(run: Path, task: str, **data: object) -> None:
    """Rewrite the ``data`` (and top-level keys given as ``top_*``) of one task's run record."""
    (path,) = run.glob(f"**/evalkit/{task}.run.json")
    record = json.loads(path.read_text())
    for key, value in data.items():
        if key.startswith("top_"):
            record[key[4:]] = value
        else:
            record["data"][key] = value
    path.write_text(json.dumps(record))


def test_shared_only_judges_the_shared_task_and_lists_the_other(tmp_path: Path, capsys) -> None:
    both = write_run(tmp_path / "both", retrieval=RETRIEVAL, sts=STS)
    one = write_run(tmp_path / "one", model="org/one", retrieval=RETRIEVAL)
    assert main(["diff", str(both), str(one), "--resamples", "100"]) == 2  # refused, as before
    assert "STSBenchmark (only in baseline)" in capsys.readouterr().err
    assert main(["diff", str(both), str(one), "--resamples", "100", "--shared-only"]) == 0
    out = capsys.readouterr().out
    assert "not compared (one run only): STSBenchmark (only in baseline)" in out
    result = diff(both, one, resamples=100, shared_only=True)
    assert [t.task for t in result.tasks] == ["SciFact"] and result.not_compared == ("STSBenchmark (only in baseline)",)
    worse = write_run(tmp_path / "worse", model="org/worse", retrieval=RETRIEVAL - 0.2)
    assert main(["diff", str(both), str(worse), "--resamples", "100", "--shared-only"]) == 1


def _retrieval(order: list[int], files: list[str]) -> TaskData:
    docs = [("d1", "T1", "first"), ("d2", "", "second"), ("d3", "T3", "third")]
    docs = [docs[i] for i in order]
    split = RetrievalSplit(
        corpus=Corpus([d[0] for d in docs], [d[1] for d in docs], [d[2] for d in docs]),
        queries=Queries(["q2", "q1"] if order[0] else ["q1", "q2"], ["two", "one"] if order[0] else ["one", "two"]),
        qrels={"q1": {"d1": 1}, "q2": {"d3": 2, "d2": 0}},
    )
    sources = [SourceFile(path=f, sha256=f"sha-{f}", size=1) for f in files]
    return TaskData("SciFact", {"default": {"test": split}}, origin=f"mirror:{files[0]}", source_files=sources)


def test_the_same_rows_from_differently_named_files_have_one_checksum() -> None:
    mirror = _retrieval([0, 1, 2], ["/mirror/corpus.jsonl", "/mirror/queries.jsonl"])
    hub = _retrieval([2, 0, 1], ["/hub/abc/corpus-00000.parquet"])
    assert content_checksum(mirror) == content_checksum(hub)
    changed = _retrieval([0, 1, 2], ["/mirror/corpus.jsonl"])
    changed.splits["default"]["test"].qrels["q1"]["d1"] = 2
    assert content_checksum(changed) != content_checksum(mirror)
    pairs = PairSplit(["a", "b"], ["c", "d"], np.array([1.0, 2.0]))
    swapped = PairSplit(["b", "a"], ["d", "c"], np.array([2.0, 1.0]))  # pair ids are positions: order counts
    as_data = [TaskData("STS", {"default": {"test": p}}, origin="x") for p in (pairs, swapped)]
    assert content_checksum(as_data[0]) != content_checksum(as_data[1])


def test_diff_compares_content_not_file_names_and_falls_back_for_old_records(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", retrieval=RETRIEVAL, corpus_sha="aaa")
    hub = write_run(tmp_path / "hub", model="org/hub", retrieval=RETRIEVAL, corpus_sha="bbb")
    with pytest.raises(NotComparableError, match=r"corpus\.jsonl differ"):  # old records: file checksums
        diff(base, hub, resamples=100)
    _record(base, "SciFact", content_sha256="c" * 64)
    with pytest.raises(NotComparableError):  # one side without a content checksum: still the files
        diff(base, hub, resamples=100)
    _record(hub, "SciFact", content_sha256="c" * 64, files=[{"path": "/hub/x.parquet", "sha256": "zzz"}])
    assert diff(base, hub, resamples=100).exit_code == 0  # same content, other files
    _record(hub, "SciFact", content_sha256="d" * 64)
    with pytest.raises(NotComparableError, match="different data") as err:
        diff(base, hub, resamples=100)
    assert err.value.field == "data.content_sha256"


def test_different_subsets_are_refused(tmp_path: Path, capsys) -> None:
    base = write_run(tmp_path / "base", retrieval=RETRIEVAL)
    cand = write_run(tmp_path / "cand", model="org/c", retrieval=RETRIEVAL)
    _record(cand, "SciFact", top_subset="SciFact-quick-abc")
    assert main(["diff", str(base), str(cand), "--resamples", "100"]) == 2
    assert "different subsets" in capsys.readouterr().err
    _record(base, "SciFact", top_subset="SciFact-quick-abc")
    assert diff(base, cand, resamples=100).exit_code == 0


def test_a_reformatted_copy_of_the_mirror_loads_to_the_same_content(tmp_path: Path, mirror: Path) -> None:
    from evalkit.loaders import load_task_data
    from evalkit.registry.tasks import default_registry

    spec = default_registry().get("STSBenchmark")
    original = load_task_data(spec, [mirror], allow_hub=False)
    copy = tmp_path / "STSBenchmark"
    copy.mkdir()
    for source in (mirror / "STSBenchmark").glob("*.jsonl"):  # same rows, other bytes: keys reordered, spaced
        rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        copy.joinpath(source.name).write_text(
            "".join(json.dumps(dict(reversed(r.items())), indent=None) + "\n" for r in rows)
        )
    reloaded = load_task_data(spec, [tmp_path], allow_hub=False)
    assert {f.sha256 for f in reloaded.source_files}.isdisjoint({f.sha256 for f in original.source_files})
    assert content_checksum(reloaded) == content_checksum(original) is not None


def test_the_run_record_carries_the_content_checksum() -> None:
    import datetime as dt

    from evalkit.evaluators.outcome import TaskOutcome
    from evalkit.registry.tasks import default_registry
    from evalkit.results.run_record import run_record

    data = _retrieval([0, 1, 2], ["/mirror/corpus.jsonl"])
    now = dt.datetime.now(dt.UTC)
    record = run_record(
        spec=default_registry().get("SciFact"),
        data=data,
        outcome=TaskOutcome("SciFact", [], 0.0),
        model_fingerprint={},
        run_settings={},
        started_at=now,
        finished_at=now,
        command=None,
    )
    assert record["data"]["content_sha256"] == content_checksum(data)
    assert record["data"]["files"][0]["path"] == "/mirror/corpus.jsonl"  # kept: older runs compare by these
