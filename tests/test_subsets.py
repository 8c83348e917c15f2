"""Quick subsets: built by rule (mteb's HardNegatives for retrieval, strata for STS), content-addressed, exact.

Retrieval is checked on a cut of the real SciFact (its own ids and files) with a pool run written here by hand, so
the kept documents can be counted from the inputs; the subset is then compared with a copy of the mirror filtered by
hand to the manifest's ids (same content checksum, same scores from the packaged MiniLM), which proves the filter
exact. STS strata are checked on the real STSBenchmark.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.loaders import load_task_data
from evalkit.records import Corpus, PairLabelSplit, Qrels, Queries, RerankingSplit, TaskData
from evalkit.registry.tasks import default_registry
from evalkit.results.run_record import content_checksum
from evalkit.subsets import apply_subset, build_subset, read_manifest
from evalkit.subsets.apply import filter_data
from evalkit.subsets.manifest import canonical_sha256
from evalkit.subsets.select import score_deciles, stratified_rows

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
N_QUERIES, N_DOCS, RUN_DEPTH = 40, 300, 12


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_beir(folder: Path, docs: list[dict], queries: list[dict], qrels: list[list[str]], header: str) -> None:
    (folder / "qrels").mkdir(parents=True)
    (folder / "qrels" / "test.tsv").write_text("\n".join([header, *("\t".join(r) for r in qrels)]) + "\n")
    for name, items in (("queries.jsonl", queries), ("corpus.jsonl", docs)):
        (folder / name).write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")


def _qrel_rows(folder: Path) -> tuple[str, list[list[str]]]:
    lines = (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    return lines[0], [line.split("\t") for line in lines[1:] if line.strip()]


@pytest.fixture(scope="module")
def small_mirror(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Path:
    """The first judged SciFact queries, their positives and filler documents, in SciFact's own files."""
    source, target = mirror / "SciFact", tmp_path_factory.mktemp("mirror")
    header, rows = _qrel_rows(source)
    query_ids = list(dict.fromkeys(row[0] for row in rows))[:N_QUERIES]
    kept_rows = [row for row in rows if row[0] in set(query_ids)]
    positives = {row[1] for row in kept_rows}
    docs = [d for d in _jsonl(source / "corpus.jsonl") if d["_id"] in positives]
    docs += [d for d in _jsonl(source / "corpus.jsonl") if d["_id"] not in positives][: N_DOCS - len(docs)]
    queries = [q for q in _jsonl(source / "queries.jsonl") if q["_id"] in set(query_ids)]
    _write_beir(target / "SciFact", docs, queries, kept_rows, header)
    return target


@pytest.fixture(scope="module")
def pool_run(small_mirror: Path) -> tuple[Path, dict[str, list[str]]]:
    """A TREC run by hand: each query ranks RUN_DEPTH real documents, spread over the corpus, scores descending."""
    doc_ids = [d["_id"] for d in _jsonl(small_mirror / "SciFact" / "corpus.jsonl")]
    query_ids = [q["_id"] for q in _jsonl(small_mirror / "SciFact" / "queries.jsonl")]
    ranked = {q: [doc_ids[(i * 11 + k * 7) % len(doc_ids)] for k in range(RUN_DEPTH)] for i, q in enumerate(query_ids)}
    lines = [f"{q} Q0 {d} {k + 1} {RUN_DEPTH - k}.5 hand\n" for q, docs in ranked.items() for k, d in enumerate(docs)]
    path = small_mirror / "pool.trec"
    path.write_text("".join(lines), encoding="utf-8")
    return path, ranked


def _load(mirror_root: Path, task: str = "SciFact") -> TaskData:
    return load_task_data(default_registry().get(task), [mirror_root], allow_hub=False)


def _build(small_mirror: Path, pool: Path, subsets: Path, **options: object) -> dict:
    named = {"depth": 5, "max_queries": 25, "seed": 7, **options}
    built = build_subset(
        "SciFact", pool=[pool], bm25=False, subsets_dir=subsets, data_dirs=[small_mirror], allow_hub=False, **named
    )
    assert built.path == subsets / f"{built.name}.json" and built.path.is_file()
    return built.manifest


def test_hard_negatives_keep_every_positive_and_each_pool_top_k(small_mirror: Path, pool_run, tmp_path: Path) -> None:
    path, ranked = pool_run
    manifest = _build(small_mirror, path, tmp_path)
    (entry,) = manifest["selection"]
    qrels = _load(small_mirror).splits["default"]["test"].qrels
    kept = entry["queries"]
    assert len(kept) == 25 == len(set(kept)) and entry["sizes"]["queries"] == {"kept": 25, "full": N_QUERIES}
    positives = {d for q in kept for d, grade in qrels[q].items() if grade > 0}
    expected = positives | {d for q in kept for d in ranked[q][:5]}
    assert set(entry["docs"]) == expected and entry["sizes"]["docs"] == {"kept": len(expected), "full": N_DOCS}
    assert manifest["rule"] == "hard-negatives" and manifest["parameters"]["depth"] == 5
    assert manifest["pool"] == [{"label": "pool.trec", "sha256": manifest["pool"][0]["sha256"], "hf_subset": "default",
                                 "split": "test"}]  # fmt: skip
    assert manifest["name"] == f"SciFact-quick-{manifest['manifest_sha256'][:12]}"
    assert read_manifest(manifest["name"], tmp_path) == manifest


def test_same_inputs_give_the_same_manifest_and_another_seed_another(
    small_mirror: Path, pool_run, tmp_path: Path
) -> None:
    first = _build(small_mirror, pool_run[0], tmp_path / "a")
    again = _build(small_mirror, pool_run[0], tmp_path / "b")
    other_seed = _build(small_mirror, pool_run[0], tmp_path / "c", seed=8)
    named = _build(small_mirror, pool_run[0], tmp_path / "d", name="my-quick")
    assert again == first
    assert other_seed["manifest_sha256"] != first["manifest_sha256"]
    assert other_seed["selection"][0]["queries"] != first["selection"][0]["queries"]
    assert named["manifest_sha256"] == first["manifest_sha256"] and named["name"] == "my-quick"


def _filtered_copy(small_mirror: Path, manifest: dict, target: Path) -> Path:
    """The mirror cut by hand to the manifest's ids: BEIR files anyone could write."""
    (entry,) = manifest["selection"]
    queries, docs = set(entry["queries"]), set(entry["docs"])
    source = small_mirror / "SciFact"
    header, rows = _qrel_rows(source)
    _write_beir(
        target / "SciFact",
        [d for d in _jsonl(source / "corpus.jsonl") if d["_id"] in docs],
        [q for q in _jsonl(source / "queries.jsonl") if q["_id"] in queries],
        [r for r in rows if r[0] in queries and r[1] in docs],
        header,
    )
    return target


def test_applied_subset_is_the_hand_filtered_mirror(small_mirror: Path, pool_run, tmp_path: Path) -> None:
    manifest = _build(small_mirror, pool_run[0], tmp_path / "subsets")
    applied = apply_subset(_load(small_mirror), manifest)
    by_hand = _load(_filtered_copy(small_mirror, manifest, tmp_path / "filtered"))
    assert content_checksum(applied) == content_checksum(by_hand) == manifest["subset_content_sha256"]
    assert applied.splits["default"]["test"].corpus.ids == by_hand.splits["default"]["test"].corpus.ids  # file order


def test_sts_subset_keeps_the_strata_proportions(mirror: Path, tmp_path: Path) -> None:
    built = build_subset("STSBenchmark", max_items=200, seed=3, subsets_dir=tmp_path, data_dirs=[mirror])
    manifest = built.manifest
    assert manifest["rule"] == "stratified" and "decile" in manifest["parameters"]["strata"]
    data = _load(mirror, "STSBenchmark")
    for entry in manifest["selection"]:
        split = data.splits[entry["hf_subset"]][entry["split"]]
        rows = entry["rows"]
        assert len(rows) == min(200, len(split)) and rows == sorted(set(rows))
        strata = score_deciles(np.asarray(split.scores))
        for stratum in np.unique(strata):
            full, kept = int(np.sum(strata == stratum)), int(np.sum(strata[rows] == stratum))
            assert abs(kept - full * len(rows) / len(split)) < 1  # its share, to the rounding
    assert content_checksum(apply_subset(data, manifest)) == manifest["subset_content_sha256"]


def test_pair_labels_are_strata_and_reranking_keeps_whole_queries() -> None:
    labels = np.array([1] * 30 + [0] * 70)
    rows = stratified_rows(labels, 10, np.random.default_rng(0))
    assert len(rows) == 10 and int(labels[rows].sum()) == 3
    corpus = Corpus(["d1", "d2", "d3", "d4"], ["", "", "", ""], ["a", "b", "c", "d"])
    qrels: Qrels = {"q1": {"d1": 1}, "q2": {"d3": 1}}
    split = RerankingSplit(Queries(["q1", "q2"], ["x", "y"]), [["d1", "d2"], ["d3", "d4"]], corpus, qrels)
    pairs = PairLabelSplit(["a", "b", "c"], ["d", "e", "f"], np.array([1, 0, 1]))
    data = TaskData("T", {"default": {"test": split, "dev": pairs}}, origin="test")
    manifest = {"name": "T-quick", "selection": [
        {"hf_subset": "default", "split": "test", "kind": "reranking", "queries": ["q2"]},
        {"hf_subset": "default", "split": "dev", "kind": "pairs", "rows": [0, 2]},
    ]}  # fmt: skip
    kept = filter_data(data, manifest).splits["default"]
    assert kept["test"].candidates == [["d3", "d4"]] and kept["test"].corpus.ids == ["d3", "d4"]
    assert kept["dev"].texts1 == ["a", "c"] and kept["dev"].labels.tolist() == [1, 1]


def _exit_and_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    return code, lines


def _tamper(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["selection"][0]["docs"].pop()
    path.write_text(json.dumps(manifest))


def _changed_mirror(small_mirror: Path, target: Path) -> Path:
    shutil.copytree(small_mirror / "SciFact", target / "SciFact")
    docs = _jsonl(target / "SciFact" / "corpus.jsonl")
    docs[-1]["text"] += " (edited)"
    (target / "SciFact" / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return target


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("tampered", "edited since it was built"),
        ("forged", "'parameters' must be an object"),
        ("renamed", "(renamed?)"),
        ("changed data", "changed since the subset was built"),
        ("hostile --subset", "not a safe name"),
        ("hostile --name", "not a safe name"),
        ("unknown pool doc", "pool.bad.trec:2: field 'docid'"),
        ("no pool", "needs at least one pool run"),
        ("task not in the run", "which this run does not evaluate"),
    ],
)
def test_refusals_are_one_line_exit_2(
    case: str, expected: str, small_mirror: Path, pool_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subsets = tmp_path / "subsets"
    name = _build(small_mirror, pool_run[0], subsets)["name"]
    common = ["--subsets-dir", str(subsets), "--data-dir", str(small_mirror), "--output", str(tmp_path / "out")]
    run = ["run", "--model", MODEL, "--subset", name, *common]
    build = ["subset", "build", "--task", "SciFact", "--no-bm25", "--subsets-dir", str(subsets), "--data-dir",
             str(small_mirror), "--no-hub"]  # fmt: skip
    if case == "tampered":
        _tamper(subsets / f"{name}.json")
    elif case == "forged":  # a matching checksum over fields of the wrong type
        forged = json.loads((subsets / f"{name}.json").read_text())
        forged["parameters"] = ["depth", 5]
        forged["manifest_sha256"] = canonical_sha256(forged)
        (subsets / f"{name}.json").write_text(json.dumps(forged))
    elif case == "renamed":
        (subsets / f"{name}.json").rename(subsets / "other.json")
        run[run.index(name)] = "other"
    elif case == "changed data":
        run[run.index(str(small_mirror))] = str(_changed_mirror(small_mirror, tmp_path / "changed"))
    elif case == "hostile --subset":
        run[run.index(name)] = "../../etc/passwd"
    elif case == "hostile --name":
        run = [*build, "--pool", str(pool_run[0]), "--name", "../escape"]
    elif case == "unknown pool doc":
        bad = tmp_path / "pool.bad.trec"
        first = pool_run[0].read_text().splitlines()[0]
        bad.write_text(f"{first}\n{first.split()[0]} Q0 no-such-doc 2 1.0 hand\n")
        run = [*build, "--pool", str(bad)]
    elif case == "no pool":
        run = build
    else:
        run = [*run, "--tasks", "STSBenchmark"]
    code, lines = _exit_and_line(run, capsys)
    assert code == 2 and len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "out").exists()  # refused before anything was written
    if case == "tampered":
        assert _exit_and_line(["subset", "show", name, "--subsets-dir", str(subsets)], capsys)[0] == 2


def test_show_prints_the_summary(small_mirror: Path, pool_run, tmp_path: Path, capsys) -> None:
    name = _build(small_mirror, pool_run[0], tmp_path)["name"]
    assert main(["subset", "show", name, "--subsets-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"subset {name}: SciFact by rule hard-negatives" in out and f"of {N_QUERIES} queries" in out


@pytest.mark.slow
def test_default_pool_is_bm25_run_by_evalkit(small_mirror: Path, tmp_path: Path) -> None:
    import evalkit

    evalkit.evaluate("bm25", "SciFact", data_dir=small_mirror, output=tmp_path / "bm25", save_run=True,
                     use_cache=False, show_progress=False, on_task_done=None)  # fmt: skip
    options = {"depth": 5, "max_queries": 25, "data_dirs": [small_mirror], "allow_hub": False}
    default = build_subset("SciFact", subsets_dir=tmp_path / "a", **options).manifest
    by_hand = build_subset("SciFact", bm25=False, pool=[tmp_path / "bm25"], subsets_dir=tmp_path / "b", **options)
    assert default["pool"][0]["label"].startswith("mteb/baseline-bm25s@")
    assert default == by_hand.manifest  # the same run file, the same manifest


def _scores(folder: Path) -> dict:
    (result,) = folder.rglob("SciFact.json")
    return json.loads(result.read_text())["scores"]


@pytest.mark.slow
def test_subset_run_is_an_experiment_scored_as_the_filtered_mirror(
    small_mirror: Path, pool_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import evalkit

    manifest = _build(small_mirror, pool_run[0], tmp_path / "subsets", max_queries=10)
    filtered = _filtered_copy(small_mirror, manifest, tmp_path / "filtered")
    common = {"show_progress": False, "on_task_done": None, "cache_dir": tmp_path / "cache"}
    evalkit.evaluate(MODEL, data_dir=small_mirror, output=tmp_path / "sub", subset=manifest["name"],
                     subsets_dir=tmp_path / "subsets", **common)  # fmt: skip
    evalkit.evaluate(MODEL, "SciFact", data_dir=filtered, output=tmp_path / "hand", **common)
    evalkit.evaluate(MODEL, "SciFact", data_dir=small_mirror, output=tmp_path / "full", **common)
    (record_file,) = (tmp_path / "sub").rglob("SciFact.run.json")
    run_dir = record_file.parent.parent
    assert run_dir.parent.name == "experiments" and run_dir.name == f"subset_{manifest['name']}"
    record = json.loads(record_file.read_text())
    assert record["subset"] == {"name": manifest["name"], "manifest_sha256": manifest["manifest_sha256"],
                                "rule": "hard-negatives"}  # fmt: skip
    assert _scores(tmp_path / "sub") == _scores(tmp_path / "hand") != _scores(tmp_path / "full")

    (full_dir,) = {p.parent for p in (tmp_path / "full").rglob("SciFact.json")}
    code, lines = _exit_and_line(["diff", str(full_dir), str(run_dir)], capsys)
    assert code == 2 and "different subsets" in lines[-1]
    fake = tmp_path / "fake" / full_dir.parent.name / full_dir.name  # the subset's files in a plain revision folder
    shutil.copytree(run_dir, fake)
    shutil.copyfile(full_dir / "model_meta.json", fake / "model_meta.json")
    code, lines = _exit_and_line(["submit", str(fake), "--out", str(tmp_path / "submission")], capsys)
    assert code == 2 and len(lines) == 1 and "quick subset" in lines[0], lines
