"""Loaders: the real local mirror, made-up files for every error case, the hub path driven by local folders.

The hub tests build folders laid out like Hugging Face dataset repos and point specs at them, so mteb's and
``datasets``' real loading code runs without network; the ``hf_sandbox`` fixture keeps every cache in tmp.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalkit.errors import DataError, MissingDataError
from evalkit.loaders import (
    iter_jsonl,
    load_beir_split,
    load_from_hub,
    load_from_mirror,
    load_pair_split,
    load_task_data,
    mirror_candidates,
    read_qrels,
    source_file,
)
from evalkit.records import PairSplit, RetrievalSplit
from evalkit.registry.tasks import TaskSpec


@pytest.fixture(autouse=True)
def hf_sandbox(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline, with every Hugging Face cache in a fresh tmp folder.

    ``datasets`` and ``huggingface_hub`` read these settings into module constants at import, so the constants
    are patched as well as the environment.
    """
    import datasets
    import huggingface_hub.constants as hub_constants

    home = tmp_path_factory.mktemp("hf_home")
    cache = home / "datasets"
    for name, value in {
        "HF_HOME": home,
        "HF_DATASETS_CACHE": cache,
        "HF_HUB_CACHE": home / "hub",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name, value in {
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": cache,
        "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": cache / "downloads",
        "EXTRACTED_DATASETS_PATH": cache / "downloads" / "extracted",
        "HF_HUB_OFFLINE": True,
        "HF_DATASETS_OFFLINE": True,
    }.items():
        monkeypatch.setattr(datasets.config, name, value)
    monkeypatch.setattr(hub_constants, "HF_HOME", str(home))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return home


# --- helpers ------------------------------------------------------------------------------------------------


def make_spec(
    name: str = "Toy", task_type: str = "Retrieval", splits: tuple[str, ...] = ("test",), **kwargs: Any
) -> TaskSpec:
    return TaskSpec(
        name=name,
        type=task_type,
        languages=("eng-Latn",),
        eval_splits=splits,
        main_score="ndcg_at_10" if task_type == "Retrieval" else "cosine_spearman",
        **kwargs,
    )


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Rows may be dicts (dumped) or raw strings (written as they are, for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    text = "".join(line + "\n" for line in lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_qrels(path: Path, rows: list[str], header: str = "query-id\tcorpus-id\tscore") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(line + "\n" for line in [header, *rows])
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


CORPUS = [
    {"_id": "d1", "title": "One", "text": "first document"},
    {"_id": "d2", "text": "second document, no title"},
    {"_id": "d3", "title": None, "text": "third document, null title"},
    {"_id": 4, "title": "Four", "text": "an integer id"},
]
QUERIES = [
    {"_id": "q1", "text": "first query"},
    {"_id": "q2", "text": "a query without judgements"},
    {"_id": "q3", "text": "third query"},
]
QRELS = ["q3\td1\t1", "q1\td2\t2", "q1\t4\t0"]


def write_beir(
    folder: Path,
    *,
    corpus: list[Any] = CORPUS,
    queries: list[Any] = QUERIES,
    qrels: list[str] = QRELS,
    split: str = "test",
    gz: bool = False,
) -> Path:
    ext = ".gz" if gz else ""
    write_jsonl(folder / f"corpus.jsonl{ext}", corpus)
    write_jsonl(folder / f"queries.jsonl{ext}", queries)
    write_qrels(folder / "qrels" / f"{split}.tsv{ext}", qrels)
    return folder


PAIRS = [
    {"sentence1": "a cat", "sentence2": "a kitten", "score": 4.5},
    {"sentence1": "a dog", "sentence2": "a car", "score": 0},
    {"sentence1": "rain", "sentence2": "it rains", "score": 3.2},
]


def assert_points_at(err: pytest.ExceptionInfo[DataError], path: Path, line: int | None, field: str | None) -> None:
    """The error is one line naming the file, the line and the field, and carries them as attributes."""
    text = str(err.value)
    assert "\n" not in text
    assert err.value.file == str(path)
    assert err.value.line == line
    assert err.value.field == field
    assert text.startswith(f"{path}:{line}" if line is not None else str(path))
    if field is not None:
        assert f"field '{field}'" in text


# --- the real mirror ----------------------------------------------------------------------------------------


def test_scifact_from_the_mirror(mirror: Path, shared_data: Path) -> None:
    spec = make_spec("SciFact", dataset_path="mteb/scifact", dataset_revision="d56462d0e63a")
    data = load_task_data(spec, [mirror], allow_hub=False)
    split = data.splits["default"]["test"]
    assert isinstance(split, RetrievalSplit)
    assert (len(split.corpus), len(split.queries), sum(map(len, split.qrels.values()))) == (5183, 300, 339)
    assert data.origin == f"mirror:{mirror / 'SciFact'}"
    assert split.corpus.ids[0] == "4983" and split.corpus.titles[0].startswith("Microstructural development")
    assert set(split.queries.ids) == set(split.qrels)
    sums = dict(line.split()[::-1] for line in (shared_data / "SHA256SUMS").read_text().splitlines())
    for read in data.source_files:
        assert read.sha256 == sums["./" + str(Path(read.path).relative_to(shared_data.resolve()))]


def test_stsbenchmark_from_the_mirror(mirror: Path) -> None:
    data = load_task_data(make_spec("STSBenchmark", "STS"), [mirror], allow_hub=False)
    split = data.splits["default"]["test"]
    assert isinstance(split, PairSplit) and len(split) == 1379
    assert split.scores.dtype == np.float64 and split.scores.shape == (1379,)
    assert split.scores.min() >= 0.0 and split.scores.max() <= 5.0


def test_sts_task_with_two_eval_splits(mirror: Path) -> None:
    data = load_task_data(make_spec("ATEC", "STS", ("validation", "test")), [mirror], allow_hub=False)
    assert list(data.splits["default"]) == ["validation", "test"]
    assert [len(s) for s in data.splits["default"].values()] == [20000, 20000]
    assert [Path(f.path).name for f in data.source_files] == ["validation.jsonl", "test.jsonl"]


def test_real_qrels_with_hash_ids_and_zero_grades(shared_data: Path) -> None:
    qrels = read_qrels(shared_data / "qrels_only" / "miracl" / "yo" / "qrels" / "dev.tsv")
    assert qrels["10020#0"]["10020#1"] == 1 and qrels["10020#0"]["10020#0"] == 0


# --- made-up files: what loads ------------------------------------------------------------------------------


def test_beir_split_keeps_file_order_and_judged_queries(tmp_path: Path) -> None:
    split, files = load_beir_split(write_beir(tmp_path / "toy"), "test")
    assert split.corpus.ids == ["d1", "d2", "d3", "4"]
    assert split.corpus.titles == ["One", "", "", "Four"]
    assert split.queries.ids == ["q1", "q3"]  # queries-file order, not qrels order; q2 has no judgement
    assert split.queries.texts == ["first query", "third query"]
    assert split.qrels == {"q3": {"d1": 1}, "q1": {"d2": 2, "4": 0}}  # a grade-0 judgement still counts
    assert [Path(f.path).name for f in files] == ["corpus.jsonl", "queries.jsonl", "test.tsv"]


def test_retrieval_splits_share_one_corpus(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "Toy")
    write_qrels(folder / "qrels" / "dev.tsv.gz", ["q2\td3\t1"])
    data = load_from_mirror(make_spec(splits=("dev", "test")), folder)
    dev, test = data.splits["default"]["dev"], data.splits["default"]["test"]
    assert isinstance(dev, RetrievalSplit) and isinstance(test, RetrievalSplit)
    assert dev.corpus is test.corpus and dev.queries.ids == ["q2"] and test.queries.ids == ["q1", "q3"]
    assert [Path(f.path).name for f in data.source_files] == [
        "corpus.jsonl",
        "queries.jsonl",
        "dev.tsv.gz",
        "test.tsv",
    ]


def test_gzipped_files_load(tmp_path: Path) -> None:
    split, files = load_beir_split(write_beir(tmp_path / "toy", gz=True), "test")
    assert split.corpus.ids == ["d1", "d2", "d3", "4"] and split.queries.ids == ["q1", "q3"]
    assert all(f.path.endswith(".gz") for f in files)
    pairs, read = load_pair_split(write_jsonl(tmp_path / "test.jsonl.gz", PAIRS))
    assert pairs.texts1 == ["a cat", "a dog", "rain"] and pairs.scores.tolist() == [4.5, 0.0, 3.2]
    assert read.size == (tmp_path / "test.jsonl.gz").stat().st_size


def test_hash_and_odd_characters_in_ids(tmp_path: Path) -> None:
    corpus = [{"_id": "10020#1", "text": "a"}, {"_id": '10020#0 "x"', "text": "b"}]
    queries = [{"_id": "10020#0", "text": "q"}]
    folder = write_beir(
        tmp_path / "t",
        corpus=corpus,
        queries=queries,
        qrels=["10020#0\t10020#1\t1", '10020#0\t10020#0 "x"\t0'],
    )
    split, _ = load_beir_split(folder, "test")
    assert split.qrels == {"10020#0": {"10020#1": 1, '10020#0 "x"': 0}}


def test_pairs_load_in_file_order(tmp_path: Path) -> None:
    pairs, _ = load_pair_split(write_jsonl(tmp_path / "test.jsonl", PAIRS))
    assert pairs.texts2 == ["a kitten", "a car", "it rains"]
    assert pairs.scores.dtype == np.float64


def test_iter_jsonl_skips_blank_lines_and_counts_them(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"a": 1}, "", "   ", {"a": 2}])
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]


def test_source_file_checksum(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    payload = bytes(range(256)) * 10_000
    path.write_bytes(payload)
    read = source_file(path)
    assert (read.sha256, read.size) == (hashlib.sha256(payload).hexdigest(), len(payload))
    assert read.path == str(path)


def test_subsets_sit_in_sub_folders(tmp_path: Path) -> None:
    task_dir = tmp_path / "Multi"
    write_jsonl(task_dir / "en-en" / "test.jsonl", PAIRS)
    write_jsonl(task_dir / "es-es" / "test.jsonl.gz", PAIRS[:2])
    data = load_from_mirror(make_spec("Multi", "STS", hf_subsets=("en-en", "es-es")), task_dir)
    assert {k: len(v["test"]) for k, v in data.splits.items()} == {"en-en": 3, "es-es": 2}


def test_spec_data_dir_holds_the_files_directly(tmp_path: Path) -> None:
    own = write_beir(tmp_path / "my_dataset")
    spec = make_spec("MyTask", data_dir=own)
    assert mirror_candidates(spec, [tmp_path / "a", tmp_path / "b"]) == [
        own,
        tmp_path / "a" / "MyTask",
        tmp_path / "b" / "MyTask",
    ]
    data = load_task_data(spec, [tmp_path / "a"])
    assert data.origin == f"mirror:{own}"


def test_later_data_dirs_are_tried_in_order(tmp_path: Path) -> None:
    (tmp_path / "first" / "Toy").mkdir(parents=True)  # exists but has no files: skipped, not an error
    write_beir(tmp_path / "second" / "Toy")
    data = load_task_data(make_spec(), [tmp_path / "first", tmp_path / "second"], allow_hub=False)
    assert data.origin == f"mirror:{tmp_path / 'second' / 'Toy'}"


# --- made-up files: every error case ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "rows", "line", "field"),
    [
        ("corpus.jsonl", [CORPUS[0], '{"_id": "d2", "text": '], 2, None),
        ("corpus.jsonl", [CORPUS[0], '["not", "an", "object"]'], 2, None),
        ("corpus.jsonl", [CORPUS[0], {"title": "t", "text": "no id"}], 2, "_id"),
        ("corpus.jsonl", [CORPUS[0], {"_id": "d2", "title": "no text"}], 2, "text"),
        ("corpus.jsonl", [CORPUS[0], {"_id": "d2", "text": 7}], 2, "text"),
        ("corpus.jsonl", [CORPUS[0], {"_id": 1.5, "text": "float id"}], 2, "_id"),
        ("corpus.jsonl", [CORPUS[0], {"_id": "d1x", "title": 3, "text": "t"}], 2, "title"),
        ("corpus.jsonl", [CORPUS[0], "", {"_id": "d1", "text": "duplicate"}], 3, "_id"),
        ("queries.jsonl", [QUERIES[0], {"_id": "q1", "text": "duplicate"}], 2, "_id"),
        ("queries.jsonl", [QUERIES[0], {"_id": "q9"}], 2, "text"),
        ("corpus.jsonl.gz", [CORPUS[0], "{broken"], 2, None),
    ],
)
def test_bad_jsonl_points_at_file_line_field(
    tmp_path: Path, target: str, rows: list[Any], line: int, field: str | None
) -> None:
    folder = write_beir(tmp_path / "t")
    if target.endswith(".gz"):
        (folder / target.removesuffix(".gz")).unlink()
    write_jsonl(folder / target, rows)
    with pytest.raises(DataError) as err:
        load_beir_split(folder, "test")
    assert_points_at(err, folder / target, line, field)


@pytest.mark.parametrize(
    ("rows", "line", "field", "words"),
    [
        (["q1\td1"], 2, None, "3 tab-separated columns"),
        (["q1\td1\t1\textra"], 2, None, "3 tab-separated columns"),
        (["q1\td1\t1", "q1 d2 1"], 3, None, "got 1"),
        (["q1\td1\t1.0"], 2, "score", "integer"),
        (["q1\td1\thigh"], 2, "score", "integer"),
        (["q1\td1\t1", "", "q1\tnope\t1"], 4, "corpus-id", "'nope' is not in the corpus"),
        (["q9\td1\t1"], 2, "query-id", "'q9' is not in the queries"),
    ],
)
def test_bad_qrels_point_at_file_line_field(
    tmp_path: Path, rows: list[str], line: int, field: str | None, words: str
) -> None:
    folder = write_beir(tmp_path / "t", qrels=rows)
    with pytest.raises(DataError) as err:
        load_beir_split(folder, "test")
    assert_points_at(err, folder / "qrels" / "test.tsv", line, field)
    assert words in str(err.value)


def test_qrels_without_header_is_an_error(tmp_path: Path) -> None:
    folder = write_beir(
        tmp_path / "t",
        qrels=["q1\td2\t1"],
    )
    path = write_qrels(folder / "qrels" / "test.tsv", ["q1\td2\t1"], header="q3\td1\t1")
    with pytest.raises(DataError) as err:
        load_beir_split(folder, "test")
    assert_points_at(err, path, 1, None)
    assert "header" in str(err.value)


@pytest.mark.parametrize(
    ("rows", "line", "field"),
    [
        ([PAIRS[0], {"sentence1": "a", "score": 1}], 2, "sentence2"),
        ([PAIRS[0], {"sentence2": "a", "score": 1}], 2, "sentence1"),
        ([PAIRS[0], {"sentence1": "a", "sentence2": "b"}], 2, "score"),
        ([PAIRS[0], {"sentence1": "a", "sentence2": "b", "score": "4.0"}], 2, "score"),
        ([PAIRS[0], {"sentence1": "a", "sentence2": "b", "score": True}], 2, "score"),
        ([PAIRS[0], '{"sentence1": "a", "sentence2": "b", "score": NaN}'], 2, "score"),
        ([PAIRS[0], {"sentence1": None, "sentence2": "b", "score": 1}], 2, "sentence1"),
        ([PAIRS[0], "", "not json"], 3, None),
    ],
)
def test_bad_pairs_point_at_file_line_field(tmp_path: Path, rows: list[Any], line: int, field: str | None) -> None:
    path = write_jsonl(tmp_path / "test.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_pair_split(path)
    assert_points_at(err, path, line, field)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_bytes(json.dumps(PAIRS[0]).encode() + b'\n{"sentence1": "\xff"}\n')
    with pytest.raises(DataError) as err:
        load_pair_split(path)
    assert_points_at(err, path, 2, None)
    assert "UTF-8" in str(err.value)


def test_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl.gz"
    path.write_bytes(b"not gzip at all\n")
    with pytest.raises(DataError, match="cannot read the file") as err:
        load_pair_split(path)
    assert err.value.file == str(path)
    whole = gzip.compress(b"".join(json.dumps(p).encode() + b"\n" for p in PAIRS))
    path.write_bytes(whole[:-12])  # truncated: the last line is lost mid-stream
    with pytest.raises(DataError, match="cannot read the file"):
        load_pair_split(path)


def test_empty_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no sentence pairs"):
        load_pair_split(write_jsonl(tmp_path / "test.jsonl", []))
    with pytest.raises(DataError, match="no judgements"):
        load_beir_split(write_beir(tmp_path / "t", qrels=[]), "test")


def test_missing_file_given_by_path(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="no such file"):
        load_pair_split(tmp_path / "test.jsonl")


def test_missing_qrels_split_names_the_paths(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "t")
    with pytest.raises(MissingDataError) as err:
        load_beir_split(folder, "dev")
    assert str(folder / "qrels" / "dev.tsv") in str(err.value)
    assert str(folder / "qrels" / "dev.tsv.gz") in str(err.value)
    assert "'dev'" in str(err.value)


def test_missing_sts_split_names_the_split_and_files(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "Pairs" / "test.jsonl", PAIRS)
    with pytest.raises(MissingDataError) as err:
        load_from_mirror(make_spec("Pairs", "STS", ("validation", "test")), tmp_path / "Pairs")
    text = str(err.value)
    assert "split 'validation'" in text
    assert str(tmp_path / "Pairs" / "validation.jsonl") in text and "validation.jsonl.gz" in text


def test_missing_data_names_every_place_looked_at(tmp_path: Path) -> None:
    (tmp_path / "b" / "Toy" / "qrels").mkdir(parents=True)
    spec = make_spec(data_dir=tmp_path / "own", dataset_path="no-such-org/no-such-dataset", dataset_revision="abc123")
    with pytest.raises(MissingDataError) as err:
        load_task_data(spec, [tmp_path / "a", tmp_path / "b"])
    text = str(err.value)
    assert "\n" not in text and "Toy" in text
    for place in (tmp_path / "own", tmp_path / "a" / "Toy", tmp_path / "b" / "Toy"):
        assert str(place) in text
    assert "hub:no-such-org/no-such-dataset@abc123 (" in text
    assert "offline" in text  # the reason the hub failed, in a few words


def test_hub_off_is_named_too(tmp_path: Path) -> None:
    spec = make_spec(dataset_path="org/data", dataset_revision="abc123")
    with pytest.raises(MissingDataError, match=r"hub:org/data@abc123 \(not tried: hub loading is off\)"):
        load_task_data(spec, [tmp_path], allow_hub=False)


def test_malformed_mirror_does_not_fall_through_to_the_hub(tmp_path: Path) -> None:
    hub_folder = make_hub_retrieval_repo(tmp_path / "hub_repo")
    folder = write_beir(tmp_path / "mirror" / "Toy", qrels=["q1\tnope\t1"])
    spec = make_spec(dataset_path=str(hub_folder))
    with pytest.raises(DataError, match="not in the corpus"):
        load_task_data(spec, [tmp_path / "mirror"])
    (folder / "qrels" / "test.tsv").unlink()  # now merely missing: the hub is next
    assert load_task_data(spec, [tmp_path / "mirror"]).origin == f"hub:{hub_folder}@main"


# --- the hub path, driven by local folders laid out like hub dataset repos ----------------------------------


def write_readme(folder: Path, configs: dict[str, dict[str, str]]) -> None:
    """A dataset card whose YAML ``configs:`` maps each config to its split files, as hub repos do."""
    lines = ["---", "configs:"]
    for name, files in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {path}" for split, path in files.items()]
    (folder / "README.md").write_text("\n".join([*lines, "---", "# test dataset", ""]), encoding="utf-8")


def make_hub_retrieval_repo(folder: Path, qrels_splits: tuple[str, ...] = ("test",)) -> Path:
    """Laid out like ``mteb/scifact``: parquet configs ``corpus``, ``queries`` and ``default`` (the qrels).

    One format for the whole repo: ``datasets`` picks a single builder per repo from the majority of files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(name: str, columns: dict[str, list[Any]]) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), folder / name)

    write(
        "corpus.parquet",
        {
            "_id": ["d1", "d2", "d3", "4"],
            "title": ["One", None, "", "Four"],
            "text": ["first", "second", "third", "fourth"],
        },
    )
    write("queries.parquet", {"_id": [q["_id"] for q in QUERIES], "text": [q["text"] for q in QUERIES]})
    for split in qrels_splits:
        write(
            f"qrels/{split}.parquet",
            {"query-id": ["q3", "q1", "q1"], "corpus-id": ["d1", "d2", "4"], "score": [1, 2, 0]},
        )
    write_readme(
        folder,
        {
            "corpus": {"corpus": "corpus.parquet"},
            "queries": {"queries": "queries.parquet"},
            "default": {split: f"qrels/{split}.parquet" for split in qrels_splits},
        },
    )
    return folder


def test_hub_retrieval_for_a_spec_only_task(tmp_path: Path) -> None:
    folder = make_hub_retrieval_repo(tmp_path / "repo")
    data = load_from_hub(make_spec(dataset_path=str(folder), dataset_revision="v1"))
    split = data.splits["default"]["test"]
    assert isinstance(split, RetrievalSplit)
    assert data.origin == f"hub:{folder}@v1"
    assert split.corpus.ids == ["d1", "d2", "d3", "4"] and split.corpus.titles == ["One", "", "", "Four"]
    assert split.queries.ids == ["q1", "q3"]
    assert split.qrels == {"q3": {"d1": 1}, "q1": {"d2": 2, "4": 0}}


def test_hub_retrieval_missing_split_is_not_replaced_by_another(tmp_path: Path) -> None:
    folder = make_hub_retrieval_repo(tmp_path / "repo")  # qrels hold only "test"
    with pytest.raises(MissingDataError) as err:
        load_from_hub(make_spec(splits=("dev",), dataset_path=str(folder)))
    assert str(err.value).startswith(f"hub:{folder}@main: no split 'dev'")


def test_hub_pairs_for_a_spec_only_task(tmp_path: Path) -> None:
    folder = tmp_path / "sts_repo"
    write_jsonl(folder / "data" / "test.jsonl", PAIRS)
    write_jsonl(folder / "data" / "validation.jsonl", PAIRS[:2])  # one pair is refused: no correlation (issue 12)
    write_readme(folder, {"default": {"test": "data/test.jsonl", "validation": "data/validation.jsonl"}})
    data = load_from_hub(make_spec("MySTS", "STS", ("validation", "test"), dataset_path=str(folder)))
    assert {k: len(v) for k, v in data.splits["default"].items()} == {"validation": 2, "test": 3}
    test = data.splits["default"]["test"]
    assert isinstance(test, PairSplit) and test.scores.tolist() == [4.5, 0.0, 3.2]
    with pytest.raises(MissingDataError, match="no split 'train'"):
        load_from_hub(make_spec("MySTS", "STS", ("train",), dataset_path=str(folder)))


def test_hub_not_reachable_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError) as err:
        load_from_hub(make_spec("S", "STS", dataset_path="no-such-org/no-such-sts", dataset_revision="r1"))
    text = str(err.value)
    assert text.startswith("hub:no-such-org/no-such-sts@r1: ") and "\n" not in text


def test_mteb_task_reuses_mteb_loading_with_an_overridden_path(tmp_path: Path) -> None:
    import mteb

    folder = tmp_path / "stsb_repo"
    write_jsonl(folder / "test.jsonl", PAIRS)
    write_readme(folder, {"default": {"test": "test.jsonl"}})
    spec = make_spec(
        "STSBenchmark",
        "STS",
        metadata_source="mteb",
        dataset_path=str(folder),
        dataset_revision="b0fddb56ed78048fa8b90373c8a3cfc37b684831",
    )
    data = load_from_hub(spec)
    assert data.splits["default"]["test"].scores.tolist() == [4.5, 0.0, 3.2]
    assert data.origin == f"hub:{folder}@b0fddb56ed78048fa8b90373c8a3cfc37b684831"
    assert mteb.get_task("STSBenchmark").metadata.dataset["path"] == "mteb/stsbenchmark-sts"  # not leaked


def test_mteb_retrieval_task_reuses_mteb_loading(tmp_path: Path) -> None:
    folder = make_hub_retrieval_repo(tmp_path / "scifact_repo")
    spec = make_spec("SciFact", metadata_source="mteb", dataset_path=str(folder), dataset_revision="d5646")
    split = load_from_hub(spec).splits["default"]["test"]
    assert isinstance(split, RetrievalSplit)
    assert split.queries.ids == ["q1", "q3"] and split.qrels["q1"] == {"d2": 2, "4": 0}


def test_mteb_multilingual_task_gives_each_subset(tmp_path: Path) -> None:
    folder = tmp_path / "sts17_repo"  # STS17 loads one "default" config and splits it by its `lang` column
    rows = [{**pair, "lang": lang} for lang in ("en-en", "es-es", "ko-ko") for pair in PAIRS]
    write_jsonl(folder / "test.jsonl", rows)
    write_readme(folder, {"default": {"test": "test.jsonl"}})
    spec = make_spec(
        "STS17",
        "STS",
        metadata_source="mteb",
        hf_subsets=("en-en", "es-es"),
        dataset_path=str(folder),
        dataset_revision="x",
    )
    data = load_from_hub(spec)
    assert {k: len(v["test"]) for k, v in data.splits.items()} == {"en-en": 3, "es-es": 3}
