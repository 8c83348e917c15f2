"""PairClassification and Reranking: evalkit's evaluators give mteb's numbers, key for key, on made-up data.

mteb's numbers come from mteb itself: a real task object (SprintDuplicateQuestions, SciDocsRR,
MindSmallReranking) is handed the same made-up data and a model that returns the same fixed vectors as the
fake evalkit encoder, and ``task.evaluate`` runs its own evaluator. The data is built to be hard on tie
handling: repeated pairs, texts that share a vector, small-integer vectors (equal dot products and distances
across different pairs), positives equal to negatives, candidate texts shared across queries.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import mteb
import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.models.abs_encoder import AbsEncoder

from evalkit.core import EmbeddingCore
from evalkit.errors import DataError
from evalkit.evaluators.pair_classification import evaluate_pair_classification
from evalkit.evaluators.reranking import evaluate_reranking
from evalkit.loaders.pair_labels import load_pair_label_split
from evalkit.loaders.reranking import load_reranking_splits, load_v1_reranking_split
from evalkit.metrics.pair_classification import average_precision, best_accuracy, best_f1
from evalkit.records import Corpus, Queries, RerankingSplit

TOLERANCE = 1e-9
DIM = 8
MTEB_ONLY_KEYS = {"main_score", "hf_subset", "languages"}


# --- the same vectors, seen by evalkit and by mteb -------------------------------------------------------------


def vector_table(texts: list[str], seed: int) -> dict[str, np.ndarray]:
    """Fixed vectors per text: a third small integers (many exact ties), a third shared by two texts, the rest
    Gaussian."""
    rng = np.random.default_rng(seed)
    table: dict[str, np.ndarray] = {}
    distinct = sorted(set(texts))
    for i, text in enumerate(distinct):
        if i % 3 == 0:
            table[text] = rng.integers(-2, 3, size=DIM).astype(np.float32)
        elif i % 3 == 1 and i > 1:
            table[text] = table[distinct[i - 3]]  # another text's vector: ties between different texts
        else:
            table[text] = rng.normal(size=DIM).astype(np.float32)
        if not table[text].any():
            table[text] = np.ones(DIM, dtype=np.float32)
    return table


class TableEncoder:
    """evalkit's side: an encoder adapter whose vectors are looked up by text; records what it was asked."""

    name = "table"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.tokenized: list[str] = []
        self.prepare_calls = 0

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        self.prepare_calls += 1
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        start = len(self.tokenized)
        self.tokenized.extend(texts)
        return [[start + i] for i in range(len(texts))]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return np.stack([self.table[self.tokenized[ids[0]]] for ids in token_ids])

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


class MtebTableModel(AbsEncoder):
    """mteb's side: the same vectors behind mteb's encoder protocol, cosine as its similarity (as our models)."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        meta = mteb.get_model_meta("sentence-transformers/all-MiniLM-L6-v2")
        self.mteb_model_meta = meta.model_copy(update={"name": "evalkit-tests/table", "revision": "1"})

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str, **kwargs: Any) -> np.ndarray:
        vectors = [self.table[text] for batch in inputs for text in batch["text"]]
        return np.stack(vectors) if vectors else np.zeros((0, DIM), dtype=np.float32)


def run_mteb(task: Any, table: dict[str, np.ndarray]) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return task.evaluate(MtebTableModel(table), split="test", encode_kwargs={"batch_size": 32})["default"]


def assert_same_scores(ours: dict[str, float], theirs: dict[str, Any], *, not_reproduced: str | None = None) -> None:
    """Every key of ours is mteb's with the same value; mteb's other keys are only those we say we skip."""
    theirs = {k: v for k, v in theirs.items() if k not in MTEB_ONLY_KEYS}
    missing = set(ours) - set(theirs)
    assert not missing, f"keys mteb does not report: {sorted(missing)}"
    skipped = {k for k in theirs if k not in ours}
    assert all(not_reproduced and not_reproduced in k for k in skipped), f"mteb keys not reproduced: {sorted(skipped)}"
    different = {k: (v, theirs[k]) for k, v in ours.items() if abs(v - theirs[k]) > TOLERANCE}
    assert not different, f"(ours, mteb) differ: {different}"


def core() -> EmbeddingCore:
    return EmbeddingCore(batch_size=16, show_progress=False)


# --- PairClassification -----------------------------------------------------------------------------------------


def made_up_pairs(n: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Pairs over 60 sentences: repeated pairs with either label, identical sides, reversed pairs."""
    rng = np.random.default_rng(seed)
    sentences = [f"sentence {i}" for i in range(60)]
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        kind = rng.integers(10)
        if kind == 0 and rows:
            rows.append({**rows[rng.integers(len(rows))], "labels": int(rng.integers(2))})  # repeat, any label
        elif kind == 1:
            text = sentences[rng.integers(60)]
            rows.append({"sentence1": text, "sentence2": text, "labels": 1})
        elif kind == 2 and rows:
            prior = rows[rng.integers(len(rows))]
            rows.append({"sentence1": prior["sentence2"], "sentence2": prior["sentence1"], "labels": prior["labels"]})
        else:
            i, j = rng.integers(60, size=2)
            rows.append({"sentence1": sentences[i], "sentence2": sentences[j], "labels": int(rng.integers(2))})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("seed", [0, 1])
def test_pair_classification_equals_mteb(tmp_path: Path, seed: int) -> None:
    rows = made_up_pairs(seed=seed)
    split, _ = load_pair_label_split(write_jsonl(tmp_path / "test.jsonl", rows))
    table = vector_table(split.texts1 + split.texts2, seed)
    encoder = TableEncoder(table)
    outcome = evaluate_pair_classification(
        split, encoder, core(), split_name="test", hf_subset="default", languages=("eng-Latn",), main_score="max_ap"
    )
    assert encoder.prepare_calls == 1  # both sides in one call
    assert sorted(encoder.tokenized) == sorted(set(split.texts1 + split.texts2))  # each distinct text once

    task = mteb.get_task("SprintDuplicateQuestions")
    task.dataset = {"default": {"test": Dataset.from_list(rows)}}
    task.data_loaded = True
    theirs = run_mteb(task, table)
    assert_same_scores(outcome.scores, theirs)
    assert set(outcome.scores) == set(theirs) - MTEB_ONLY_KEYS
    assert outcome.main_score == theirs["main_score"]
    assert list(outcome.per_item.values) == ["label", "cosine", "euclidean", "manhattan", "dot"]
    assert outcome.per_item.values["label"].tolist() == [row["labels"] for row in rows]


def test_pair_classification_one_row_layout_equals_mteb(tmp_path: Path) -> None:
    """mteb v1's hub shape, the whole split in one row of lists, read by both sides."""
    rows = made_up_pairs(n=120, seed=3)
    one_row = {name: [row[name] for row in rows] for name in ("sentence1", "sentence2", "labels")}
    split, _ = load_pair_label_split(write_jsonl(tmp_path / "test.jsonl", [one_row]))
    per_line, _ = load_pair_label_split(write_jsonl(tmp_path / "lines.jsonl", rows))
    assert split.texts1 == per_line.texts1 and split.labels.tolist() == per_line.labels.tolist()
    table = vector_table(split.texts1 + split.texts2, 3)
    outcome = evaluate_pair_classification(
        split, TableEncoder(table), core(), split_name="test", hf_subset="default", languages=(), main_score="max_ap"
    )
    task = mteb.get_task("SprintDuplicateQuestions")
    task.dataset = {"default": {"test": Dataset.from_list([one_row])}}
    task.data_loaded = True
    assert_same_scores(outcome.scores, run_mteb(task, table))


@pytest.mark.parametrize("seed", range(6))
def test_threshold_search_and_ap_equal_mtebs(seed: int) -> None:
    """The kernels against mteb's own methods, on scores rounded to create many ties, both directions."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    scores = np.round(rng.normal(size=n), int(rng.integers(0, 3))).astype(np.float32)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    task = mteb.get_task("SprintDuplicateQuestions")
    for sign, high_is_similar in ((1, True), (-1, False)):  # mteb's distances: lower = more similar
        mteb_scores = (sign * scores.astype(np.float64)).tolist()
        expected = task._compute_metrics_values(mteb_scores, labels, high_is_similar)
        assert best_accuracy(scores, labels) == expected["accuracy"]
        assert best_f1(scores, labels) == (expected["f1"], expected["precision"], expected["recall"])
        if 0 < labels.sum() < n:
            assert average_precision(scores, labels) == pytest.approx(expected["ap"], abs=TOLERANCE)


def test_all_tied_scores_give_no_threshold() -> None:
    labels = np.array([1, 0, 1, 0])
    same = np.zeros(4, dtype=np.float32)
    assert best_accuracy(same, labels) == 0.0
    assert best_f1(same, labels) == (0.0, 0.0, 0.0)


def test_pair_labels_accept_the_label_column_name(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "test.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 1}])
    split, source = load_pair_label_split(path)
    assert split.labels.tolist() == [1]
    assert source.size == path.stat().st_size


@pytest.mark.parametrize(
    ("lines", "line", "field", "message"),
    [
        (['{"sentence1": "a", "sentence2": "b", "labels": 1}', '{"sentence1": "a", '], 2, None, "invalid JSON"),
        (['{"sentence1": "a", "labels": 1}'], 1, "sentence2", "missing"),
        (['{"sentence1": "a", "sentence2": "b"}'], 1, "labels", "missing"),
        (['{"sentence1": "a", "sentence2": 3, "labels": 0}'], 1, "sentence2", "expected a string"),
        (['{"sentence1": "a", "sentence2": "b", "labels": 2}'], 1, "labels", "0 or 1"),
        (['{"sentence1": "a", "sentence2": "b", "labels": true}'], 1, "labels", "0 or 1"),
        (['{"sentence1": ["a", "b"], "sentence2": ["c", 5], "labels": [0, 1]}'], 1, "sentence2[1]", "string"),
        (['{"sentence1": ["a"], "sentence2": ["c", "d"], "labels": [0, 1]}'], 1, None, "differ in length"),
        (['{"sentence1": ["a"], "sentence2": "c", "labels": [0]}'], 1, "sentence2", "array"),
        (['{"sentence1": ["a"], "sentence2": ["c"], "labels": [0]}', '{"sentence1": "a"}'], 2, None, "second line"),
    ],
)
def test_pair_label_errors_name_file_line_and_field(
    tmp_path: Path, lines: list[str], line: int, field: str | None, message: str
) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_pair_label_split(path)
    err = caught.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert message in str(err) and f"{path}:{line}" in str(err)


# --- Reranking ---------------------------------------------------------------------------------------------------


def made_up_reranking(n_queries: int = 30, seed: int = 0) -> list[dict[str, Any]]:
    """v1 rows over a shared pool of 80 candidate texts; some positives repeat a negative, some negatives repeat,
    a few rows lack positives or negatives (mteb drops them before numbering), two queries share a text."""
    rng = np.random.default_rng(seed)
    pool = [f"candidate {i}" for i in range(80)]
    rows = []
    for q in range(n_queries):
        size = int(rng.integers(5, 21))
        texts = [pool[i] for i in rng.integers(80, size=size)]  # repeats within a query happen too
        n_positive = int(rng.integers(1, 4))
        positives, negatives = texts[:n_positive], texts[n_positive:]
        if q % 7 == 3:
            negatives.append(positives[0])  # a positive equal to a negative: tied, the negative ranks first
        if q == 5:
            positives = []
        if q == 9:
            negatives = []
        rows.append({"query": f"query {q % 27}", "positive": positives, "negative": negatives})
    return rows


def mteb_v1_task(rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Any:
    """SciDocsRR's metadata on mteb's own v1 → v2 conversion of ``rows`` (the path that assigns mteb's ids)."""
    from mteb.abstasks.text import reranking as mteb_reranking

    monkeypatch.setattr(mteb_reranking, "OLD_FORMAT_RERANKING_TASKS", ["SciDocsRR"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        class SciDocsV1(mteb_reranking.AbsTaskReranking):
            metadata = mteb.get_task("SciDocsRR").metadata

        task = SciDocsV1()
        task.transform_old_dataset_format(DatasetDict({"test": Dataset.from_list(rows)}))
    return task


def reranking_texts(split: RerankingSplit) -> list[str]:
    return split.queries.texts + split.corpus.texts


def test_v1_reranking_ids_and_scores_equal_mteb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = made_up_reranking()
    split, _ = load_v1_reranking_split(write_jsonl(tmp_path / "test.jsonl", rows), "test")
    task = mteb_v1_task(rows, monkeypatch)
    theirs = task.dataset["default"]["test"]
    assert split.queries.ids == theirs["queries"]["id"]
    assert split.corpus.ids == theirs["corpus"]["id"]
    assert split.corpus.texts == theirs["corpus"]["text"]
    assert dict(zip(split.queries.ids, split.candidates, strict=True)) == dict(theirs["top_ranked"])
    assert split.qrels == dict(theirs["relevant_docs"])

    table = vector_table(reranking_texts(split), 0)
    encoder = TableEncoder(table)
    outcome = evaluate_reranking(
        split,
        encoder,
        core(),
        split_name="test",
        hf_subset="default",
        languages=("eng-Latn",),
        main_score="map_at_1000",
    )
    assert encoder.prepare_calls == 2  # one call for the queries, one for the candidates
    assert len(encoder.tokenized) == len(set(split.queries.texts)) + len(set(split.corpus.texts))
    mteb_scores = run_mteb(task, table)
    assert_same_scores(outcome.scores, mteb_scores, not_reproduced="nauc")
    assert outcome.main_score == mteb_scores["main_score"]
    assert outcome.per_item.item_ids == split.queries.ids


def test_a_positive_equal_to_a_negative_ranks_below_it(tmp_path: Path) -> None:
    """Same text, same score: trec_eval's tie-break on mteb's ids puts ``negative_...`` above ``apositive_...``."""
    rows = [{"query": "q", "positive": ["same"], "negative": ["same", "other"]}]
    split, _ = load_v1_reranking_split(write_jsonl(tmp_path / "test.jsonl", rows), "test")
    table = {
        "q": np.array([1, 0], np.float32),
        "same": np.array([1, 0], np.float32),
        "other": np.array([0, 1], np.float32),
    }
    outcome = evaluate_reranking(
        split, TableEncoder(table), core(), split_name="test", hf_subset="default", languages=(), main_score="mrr_at_10"
    )
    assert outcome.scores["mrr_at_10"] == 0.5
    assert outcome.scores["map_at_1000"] == 0.5


def test_beir_layout_with_top_ranked_loads_the_same_split(tmp_path: Path) -> None:
    split, _ = load_v1_reranking_split(write_jsonl(tmp_path / "v1" / "test.jsonl", made_up_reranking(seed=2)), "test")
    folder = tmp_path / "beir"
    corpus = [{"_id": i, "title": "", "text": t} for i, t in zip(split.corpus.ids, split.corpus.texts, strict=True)]
    write_jsonl(folder / "corpus.jsonl", corpus)
    write_jsonl(
        folder / "queries.jsonl",
        [{"_id": i, "text": t} for i, t in zip(split.queries.ids, split.queries.texts, strict=True)],
    )
    qrels = ["query-id\tcorpus-id\tscore"]
    qrels += [f"{q}\t{d}\t{g}" for q, judged in split.qrels.items() for d, g in judged.items()]
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    top = [{"query-id": q, "corpus-ids": c} for q, c in zip(split.queries.ids, split.candidates, strict=True)]
    write_jsonl(folder / "top_ranked" / "test.jsonl", top)
    loaded, files = load_reranking_splits(folder, ["test"])
    assert loaded["test"] == split
    assert len(files) == 4

    # A judged query without a top_ranked line: no candidates, scored 0 by both (mteb warns and skips it).
    write_jsonl(folder / "top_ranked" / "test.jsonl", top[:-1])
    short = load_reranking_splits(folder, ["test"])[0]["test"]
    assert short.candidates[-1] == [] and short.queries.ids == split.queries.ids
    table = vector_table(reranking_texts(short), 2)
    outcome = evaluate_reranking(
        short,
        TableEncoder(table),
        core(),
        split_name="test",
        hf_subset="default",
        languages=(),
        main_score="map_at_1000",
    )
    assert outcome.per_item.values["map_at_1000"][-1] == 0.0
    task = mteb.get_task("SciDocsRR")
    task.dataset = {
        "default": {
            "test": RetrievalSplitData(
                corpus=Dataset.from_dict(
                    {"id": short.corpus.ids, "title": short.corpus.titles, "text": short.corpus.texts}
                ),
                queries=Dataset.from_dict({"id": short.queries.ids, "text": short.queries.texts}),
                relevant_docs={q: dict(j) for q, j in short.qrels.items()},
                top_ranked={t["query-id"]: t["corpus-ids"] for t in top[:-1]},
            )
        }
    }
    task.data_loaded = True
    assert_same_scores(outcome.scores, run_mteb(task, table), not_reproduced="nauc")


def test_max_over_subqueries_equals_mteb() -> None:
    """MindSmallReranking: subqueries ``<user>_<n>`` share their candidates' judgements and are merged by max."""
    rng = np.random.default_rng(4)
    pool = [f"news {i}" for i in range(40)]
    doc_ids = [f"d{i}" for i in range(40)]
    query_ids, query_texts, candidates, qrels = [], [], [], {}
    for user in range(8):
        cands = sorted({doc_ids[i] for i in rng.integers(40, size=12)})
        judged = {d: int(rng.random() < 0.3) for d in cands}
        judged[cands[0]] = 1
        for sub in range(int(rng.integers(1, 4))):
            query_ids.append(f"u{user}_{sub}")
            query_texts.append(pool[int(rng.integers(40))])
            candidates.append(cands)
            qrels[f"u{user}_{sub}"] = judged
    split = RerankingSplit(
        queries=Queries(ids=query_ids, texts=query_texts),
        candidates=candidates,
        corpus=Corpus(ids=doc_ids, titles=[""] * 40, texts=pool),
        qrels=qrels,
    )
    table = vector_table(pool, 4)
    main = "max_over_subqueries_map_at_1000"
    outcome = evaluate_reranking(
        split, TableEncoder(table), core(), split_name="test", hf_subset="default", languages=(), main_score=main
    )
    task = mteb.get_task("MindSmallReranking")
    task.dataset = {
        "default": {
            "test": RetrievalSplitData(
                corpus=Dataset.from_dict({"id": doc_ids, "title": [""] * 40, "text": pool}),
                queries=Dataset.from_dict({"id": query_ids, "text": query_texts}),
                relevant_docs={q: dict(j) for q, j in qrels.items()},
                top_ranked=dict(zip(query_ids, candidates, strict=True)),
            )
        }
    }
    task.data_loaded = True
    theirs = run_mteb(task, table)
    assert_same_scores(outcome.scores, theirs, not_reproduced="nauc")
    assert outcome.main_score == theirs["main_score"]


@pytest.mark.parametrize(
    ("line_text", "field", "message"),
    [
        ('{"query": "q", "positive": ["a"], "negative": ["b"', None, "invalid JSON"),
        ('{"positive": ["a"], "negative": ["b"]}', "query", "missing"),
        ('{"query": "q", "negative": ["b"]}', "positive", "missing"),
        ('{"query": "q", "positive": "a", "negative": ["b"]}', "positive", "array"),
        ('{"query": "q", "positive": ["a"], "negative": ["b", null]}', "negative[1]", "string"),
        ('{"query": 7, "positive": ["a"], "negative": ["b"]}', "query", "string"),
    ],
)
def test_reranking_errors_name_file_line_and_field(
    tmp_path: Path, line_text: str, field: str | None, message: str
) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text('{"query": "ok", "positive": ["a"], "negative": ["b"]}\n' + line_text + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_v1_reranking_split(path, "test")
    err = caught.value
    assert (err.file, err.line, err.field) == (str(path), 2, field)
    assert message in str(err) and f"{path}:2" in str(err)


def test_top_ranked_errors_name_file_line_and_field(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "text": "x"}])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "y"}])
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    path = write_jsonl(tmp_path / "top_ranked" / "test.jsonl", [{"query-id": "q1", "corpus-ids": ["d1", "d9"]}])
    with pytest.raises(DataError) as caught:
        load_reranking_splits(tmp_path, ["test"])
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(path), 1, "corpus-ids[1]")
    write_jsonl(path, [{"query-id": "q1", "corpus-ids": "d1"}])
    with pytest.raises(DataError) as caught:
        load_reranking_splits(tmp_path, ["test"])
    assert (caught.value.line, caught.value.field) == (1, "corpus-ids")
