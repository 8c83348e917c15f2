"""MIRACL: the real dev topics and qrels of sw, te, th and yo (../shared/data, read by path) with made-up corpora.

The corpora hold every judged passage id plus distractors; a fake encoder that knows which query each made-up
passage answers makes the judged-relevant passages rank first, so nDCG@10 must come out exactly 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.core import EmbeddingCore
from evalkit.errors import DataError, MissingDataError
from evalkit.evaluators.retrieval import document_texts, evaluate_retrieval
from evalkit.loaders import load_task_data
from evalkit.loaders.miracl import load_miracl_splits
from evalkit.records import RetrievalSplit
from evalkit.registry.benchmarks import get_benchmark
from evalkit.registry.tasks import TaskRegistry, TaskSpec, task_spec_dirs
from evalkit.search.build import build_retriever
from evalkit.search.fusion import RetrievalSettings

RAW = Path("raw/anserini_topics_qrels")
LANGUAGES = {"sw": "swa", "te": "tel", "th": "tha", "yo": "yor"}
# Counted with cut/sort/awk on MIRACL's files (PROVENANCE.md gives the same query and line counts):
# queries, judgement lines, judgements with rel >= 1, distinct judged passages.
COUNTS = {
    "sw": (482, 5092, 910, 3514),
    "te": (828, 1606, 854, 1457),
    "th": (733, 7573, 1343, 6868),
    "yo": (119, 1188, 144, 942),
}
MIRACL_LANGUAGES = {"ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th"}
MIRACL_LANGUAGES |= {"yo", "zh"}
MARK = "relevant to:"


def raw_topics(shared_data: Path, lang: str) -> list[tuple[str, str]]:
    lines = (shared_data / RAW / f"topics.miracl-v1.0-{lang}-dev.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines]  # type: ignore[misc]


def raw_qrels(shared_data: Path, lang: str) -> list[tuple[str, str, int]]:
    lines = (shared_data / RAW / f"qrels.miracl-v1.0-{lang}-dev.tsv").read_text(encoding="utf-8").splitlines()
    return [(q, d, int(r)) for q, _, d, r in (line.split("\t") for line in lines)]


def made_up_corpus(shared_data: Path, lang: str, *, id_field: str = "docid", distractors: int = 20) -> list[dict]:
    """Every judged passage (its text names the queries it is relevant to) plus distractors, in judgement order."""
    relevant_to: dict[str, list[str]] = {}
    for query_id, doc_id, grade in raw_qrels(shared_data, lang):
        relevant_to.setdefault(doc_id, [])
        if grade > 0:
            relevant_to[doc_id].append(query_id)
    rows = [
        {id_field: doc_id, "title": f"Makala {doc_id}", "text": f"{MARK} {' '.join(queries)}" if queries else "judged"}
        for doc_id, queries in relevant_to.items()
    ]
    rows += [{id_field: f"9999999#{i}", "title": "", "text": f"distractor {i}"} for i in range(distractors)]
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def miracl_folder(shared_data: Path, root: Path, lang: str) -> Path:
    """``root/MIRACLRetrieval/<lang>/`` in MIRACL's own layout: the real topics and qrels linked, a made-up corpus."""
    folder = root / "MIRACLRetrieval" / lang
    folder.mkdir(parents=True)
    (folder / "topics.dev.tsv").symlink_to(shared_data / RAW / f"topics.miracl-v1.0-{lang}-dev.tsv")
    (folder / "qrels.dev.tsv").symlink_to(shared_data / RAW / f"qrels.miracl-v1.0-{lang}-dev.tsv")
    write_jsonl(folder / "corpus.jsonl", made_up_corpus(shared_data, lang))
    return folder


def miracl_spec(*languages: str) -> TaskSpec:
    return TaskRegistry(task_spec_dirs()).get("MIRACLRetrieval").restricted_to_languages(languages)


class QueryIndicatorEncoder:
    """A fake adapter: a query's vector is its own axis; a made-up passage's is the sum of the axes of the queries
    it names after ``relevant to:``; anything else lies on one spare axis, orthogonal to every query."""

    name = "query-indicator"

    def __init__(self, topics: list[tuple[str, str]]) -> None:
        self.axis_of_text = {text: axis for axis, (_, text) in enumerate(topics)}
        self.axis_of_id = {query_id: axis for axis, (query_id, _) in enumerate(topics)}
        self.dim = len(topics) + 1
        self._texts: list[str] = []

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        start = len(self._texts)
        self._texts.extend(texts)
        return [[start + i] for i in range(len(texts))]

    def vector(self, text: str) -> np.ndarray:
        out = np.zeros(self.dim, dtype=np.float32)
        if text in self.axis_of_text:
            out[self.axis_of_text[text]] = 1
        elif MARK in text:
            for query_id in text.split(MARK, 1)[1].split():
                out[self.axis_of_id[query_id]] += 1
        else:
            out[-1] = 1
        return out

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return np.stack([self.vector(self._texts[ids[0]]) for ids in token_ids])

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def test_miracl_metadata_is_mtebs_without_self_hit_removal() -> None:
    spec = TaskRegistry(task_spec_dirs()).get("MIRACLRetrieval")
    assert spec.metadata_source == "mteb" and spec.type == "Retrieval"
    assert set(spec.hf_subsets) == MIRACL_LANGUAGES and len(spec.hf_subsets) == 18
    assert spec.eval_splits == ("dev",) and spec.main_score == "ndcg_at_10"
    assert spec.remove_self_hits is False
    assert spec.languages_of("yo") == ("yor-Latn",) and spec.languages_of("te") == ("tel-Telu",)
    bench = get_benchmark("MIRACL")
    assert bench.task_names == ("MIRACLRetrieval",) and bench.language_table[0] == "ndcg_at_10"
    assert set(bench.mteb_tasks()[0].hf_subsets) == MIRACL_LANGUAGES


@pytest.mark.parametrize("lang", sorted(COUNTS))
def test_real_dev_topics_and_qrels_load_with_their_counts(shared_data: Path, tmp_path: Path, lang: str) -> None:
    miracl_folder(shared_data, tmp_path, lang)
    data = load_task_data(miracl_spec(LANGUAGES[lang]), [tmp_path], allow_hub=False)
    split = data.splits[lang]["dev"]
    assert isinstance(split, RetrievalSplit)
    queries, judgements, positive, judged_docs = COUNTS[lang]
    assert len(split.queries) == queries
    assert sum(len(docs) for docs in split.qrels.values()) == judgements
    assert sum(grade >= 1 for docs in split.qrels.values() for grade in docs.values()) == positive
    assert len({doc for docs in split.qrels.values() for doc in docs}) == judged_docs
    assert len(split.corpus) == judged_docs + 20
    assert split.queries.ids == [query_id for query_id, _ in raw_topics(shared_data, lang)]  # topics-file order
    assert all("#" in doc for docs in split.qrels.values() for doc in docs)  # "32589#0": the # is kept
    read = {Path(f.path).name for f in data.source_files}  # the linked files are recorded by their real paths
    assert read == {"corpus.jsonl", f"topics.miracl-v1.0-{lang}-dev.tsv", f"qrels.miracl-v1.0-{lang}-dev.tsv"}


def test_first_sw_judgements_keep_hash_ids_and_grade_zero_rows(shared_data: Path, tmp_path: Path) -> None:
    folder = miracl_folder(shared_data, tmp_path, "sw")
    split = load_miracl_splits(folder, ["dev"])[0]["dev"]
    assert {doc: split.qrels["6"][doc] for doc in ("32589#0", "93957#6", "33690#3")} == {
        "32589#0": 1,
        "93957#6": 1,
        "33690#3": 0,
    }
    assert split.queries.texts[0] == "Bandari kubwa nchini Kenya iko wapi?"
    docs = dict(zip(split.corpus.ids, document_texts(split.corpus), strict=True))
    assert docs["32589#0"] == f"Makala 32589#0 {MARK} 6"  # title and text, as mteb and the paper encode them


def test_beir_layout_of_the_same_data_loads_identically(shared_data: Path, tmp_path: Path) -> None:
    miracl = miracl_folder(shared_data, tmp_path / "miracl", "yo")
    beir = tmp_path / "beir" / "MIRACLRetrieval" / "yo"
    beir.mkdir(parents=True)
    (beir / "queries.jsonl").symlink_to(shared_data / "qrels_only" / "miracl" / "yo" / "queries.jsonl")
    (beir / "qrels").symlink_to(shared_data / "qrels_only" / "miracl" / "yo" / "qrels")
    write_jsonl(beir / "corpus.jsonl", made_up_corpus(shared_data, "yo", id_field="_id"))
    spec = miracl_spec("yor")
    from_miracl = load_task_data(spec, [miracl.parents[1]], allow_hub=False).splits["yo"]["dev"]
    from_beir = load_task_data(spec, [tmp_path / "beir"], allow_hub=False).splits["yo"]["dev"]
    assert isinstance(from_miracl, RetrievalSplit) and isinstance(from_beir, RetrievalSplit)
    assert from_miracl.qrels == from_beir.qrels
    assert from_miracl.queries == from_beir.queries
    assert from_miracl.corpus == from_beir.corpus


def dense_models(encoder: object) -> SimpleNamespace:
    """A run's models as the retrieval evaluator reads them: the dense retriever over ``encoder``."""
    retriever, _ = build_retriever(RetrievalSettings(), encoder, EmbeddingCore(show_progress=False))
    return SimpleNamespace(retriever=retriever)


@pytest.mark.parametrize("lang", ["te", "yo"])
def test_judged_relevant_passages_first_give_ndcg_and_recall_of_one(
    shared_data: Path, tmp_path: Path, lang: str
) -> None:
    miracl_folder(shared_data, tmp_path, lang)
    spec = miracl_spec(LANGUAGES[lang])
    split = load_task_data(spec, [tmp_path], allow_hub=False).splits[lang]["dev"]
    assert isinstance(split, RetrievalSplit)
    outcome = evaluate_retrieval(
        split,
        dense_models(QueryIndicatorEncoder(raw_topics(shared_data, lang))),
        split_name="dev",
        hf_subset=lang,
        languages=spec.languages_of(lang),
        main_score=spec.main_score,
        remove_self_hits=spec.remove_self_hits,
    )
    assert outcome.main_score == 1.0
    assert outcome.scores["ndcg_at_10"] == 1.0 and outcome.scores["recall_at_100"] == 1.0
    assert len(outcome.per_item.item_ids) == COUNTS[lang][0]
    assert np.all(outcome.per_item.values["ndcg_at_10"] == 1.0)


def test_yoruba_namesake_passages_stay_in_the_ranking(shared_data: Path, tmp_path: Path) -> None:
    """Yoruba topics are named like passages and 32 judgements mark the namesake relevant: removing self-hits, as
    BEIR's ignore_identical_ids would, drops exactly those queries below 1."""
    miracl_folder(shared_data, tmp_path, "yo")
    split = load_task_data(miracl_spec("yor"), [tmp_path], allow_hub=False).splits["yo"]["dev"]
    assert isinstance(split, RetrievalSplit)
    namesakes = {q for q, d, grade in raw_qrels(shared_data, "yo") if q == d and grade > 0}
    assert sum(1 for q, d, grade in raw_qrels(shared_data, "yo") if q == d and grade > 0) == 32
    encoder = QueryIndicatorEncoder(raw_topics(shared_data, "yo"))
    per_query = {}
    for remove in (False, True):
        outcome = evaluate_retrieval(
            split,
            dense_models(encoder),
            split_name="dev",
            hf_subset="yo",
            languages=("yor-Latn",),
            main_score="ndcg_at_10",
            remove_self_hits=remove,
        )
        values = outcome.per_item.values["ndcg_at_10"]
        per_query[remove] = dict(zip(outcome.per_item.item_ids, values.tolist(), strict=True))
    assert set(per_query[False].values()) == {1.0}
    assert {q for q, value in per_query[True].items() if value < 1.0} == namesakes


@pytest.mark.parametrize(
    ("file", "text", "line", "field", "message"),
    [
        ("topics.dev.tsv", "q1\tfirst query\nq2\tsecond\textra\n", 2, None, "expected 2 tab-separated columns"),
        ("topics.dev.tsv", "q1\tfirst query\nq1\tagain\n", 2, "qid", "duplicate query id 'q1'"),
        ("topics.dev.tsv", "q1\t \n", 1, "query", "empty query text"),
        ("qrels.dev.tsv", "q1\tQ0\td#1\t1\nq1\tQ0\td#2\n", 2, None, "expected 4 columns"),
        ("qrels.dev.tsv", "q1\tQ0\td#1\tyes\n", 1, "rel", "expected an integer grade"),
        ("qrels.dev.tsv", "q1\tQ0\td#1\t1\nq1\tQ0\td#9\t1\n", 2, "docid", "document 'd#9' is not in the corpus"),
        ("qrels.dev.tsv", "q7\tQ0\td#1\t1\n", 1, "qid", "query 'q7' is not in the topics file"),
        (
            "corpus.jsonl",
            '{"docid": "d#1", "title": "t", "text": "x"}\n{"docid": "d#2", "title": "t"}\n',
            2,
            "text",
            "required field is missing",
        ),
        (
            "corpus.jsonl",
            '{"docid": "d#1", "text": "x"}\n{"docid": "d#1", "text": "y"}\n',
            2,
            "docid",
            "duplicate document id 'd#1'",
        ),
        ("corpus.jsonl", '{"docid": "d#1", "text": "x"}\n{"docid": "d#2", "text": "y"\n', 2, None, "invalid JSON"),
    ],
)
def test_malformed_files_name_file_line_and_field(
    tmp_path: Path, file: str, text: str, line: int, field: str | None, message: str
) -> None:
    good = {
        "topics.dev.tsv": "q1\tfirst query\n",
        "qrels.dev.tsv": "q1 Q0 d#1 1\n",  # spaces are TREC's separator too
        "corpus.jsonl": '{"docid": "d#1", "title": "t", "text": "x"}\n{"docid": "d#2", "title": "t", "text": "y"}\n',
    }
    good[file] = text
    for name, content in good.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_miracl_splits(tmp_path, ["dev"])
    assert (err.value.file, err.value.line, err.value.field) == (str(tmp_path / file), line, field)
    assert message in err.value.message


def test_a_missing_qrels_file_is_missing_data_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "MIRACLRetrieval" / "yo"
    folder.mkdir(parents=True)
    (folder / "topics.dev.tsv").write_text("q1\tquery\n")
    with pytest.raises(MissingDataError, match="no qrels for split 'dev'"):
        load_task_data(miracl_spec("yor"), [tmp_path], allow_hub=False)


def test_cli_benchmark_miracl_on_yoruba(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`evalkit run --benchmark MIRACL` end to end with the packaged MiniLM: each relevant made-up passage repeats
    its query's text, so the real model ranks it first; the per-language table is read from the result file."""
    topics = dict(raw_topics(shared_data, "yo"))
    folder = miracl_folder(shared_data, tmp_path / "data", "yo")
    rows = made_up_corpus(shared_data, "yo")
    for row in rows:
        named = row["text"].split(MARK, 1)[1].split() if MARK in row["text"] else []
        row["title"], row["text"] = "", (topics[named[0]] if named else f"a passage about nothing {row['docid']}")
    write_jsonl(folder / "corpus.jsonl", rows)
    out = tmp_path / "out"
    args = ["run", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--benchmark", "MIRACL", "--lang", "yor"]
    code = main([*args, "--data-dir", str(tmp_path / "data"), "--output", str(out), "--no-hub", "--quiet",
                 "--runtime", "torch"])  # fmt: skip
    assert code == 0
    result_file = next(out.glob("*/*/MIRACLRetrieval.json"))
    result = json.loads(result_file.read_text())
    (cell,) = result["scores"]["dev"]
    assert cell["hf_subset"] == "yo" and cell["languages"] == ["yor-Latn"]
    assert cell["main_score"] == cell["ndcg_at_10"] > 0.9
    printed = capsys.readouterr().out
    assert "MIRACLRetrieval (dev), per language" in printed
    yo_row = next(line.split() for line in printed.splitlines() if line.strip().startswith("yo "))
    assert yo_row[1] == f"{100 * cell['ndcg_at_10']:.2f}" and yo_row[2] == f"{100 * cell['recall_at_100']:.2f}"
    average_row = next(line.split() for line in printed.splitlines() if line.strip().startswith("average"))
    assert average_row[1:] == ["missing", "missing"]  # 17 languages were not run: no partial average
