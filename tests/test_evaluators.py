"""Evaluators on small made-up data: self-hit removal, tie order, corpus reuse, STS correlations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import spearmanr

from evalkit.core import EmbeddingCore
from evalkit.evaluators.retrieval import document_texts, evaluate_retrieval, ranked_doc_ids
from evalkit.evaluators.sts import evaluate_sts
from evalkit.records import Corpus, PairSplit, Queries, RetrievalSplit
from evalkit.search.build import build_retriever
from evalkit.search.dense import TopK
from evalkit.search.fusion import RetrievalSettings


class TableEncoder:
    """A fake adapter whose vectors are looked up by text."""

    name = "table"

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.calls = 0
        self._texts: list[str] = []

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        start = len(self._texts)
        self._texts.extend(texts)
        return [[start + i] for i in range(len(texts))]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        self.calls += 1
        return np.array([self.vectors[self._texts[ids[0]]] for ids in token_ids], dtype=np.float32)

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def test_document_text_joins_title_and_text_as_mteb() -> None:
    corpus = Corpus(ids=["a", "b"], titles=["Title", ""], texts=["body", "only body"])
    assert document_texts(corpus) == ["Title body", "only body"]


def test_ranked_ids_break_ties_by_doc_id_descending_and_drop_self_hits() -> None:
    top = TopK(indices=np.array([[0, 1, 2, 3]]), scores=np.array([[0.9, 0.5, 0.5, 0.1]], dtype=np.float32))
    corpus_ids = ["q1", "d10", "d2", "d1"]
    assert ranked_doc_ids(top, corpus_ids, ["q1"], remove_self_hits=False) == [["q1", "d2", "d10", "d1"]]
    assert ranked_doc_ids(top, corpus_ids, ["q1"], remove_self_hits=True) == [["d2", "d10", "d1"]]


def retrieval_models(encoder: object, core: EmbeddingCore, **settings: object) -> SimpleNamespace:
    """What evaluate_retrieval reads of a run's models: its retriever, built as a run builds it."""
    retriever, _ = build_retriever(RetrievalSettings(**settings), encoder, core)  # type: ignore[arg-type]
    return SimpleNamespace(retriever=retriever)


def _toy_retrieval() -> tuple[RetrievalSplit, TableEncoder]:
    corpus = Corpus(ids=["q1", "d1", "d2"], titles=["", "", ""], texts=["query one", "doc one", "doc two"])
    queries = Queries(ids=["q1"], texts=["query one"])
    encoder = TableEncoder({"query one": [1, 0], "doc one": [0.6, 0.8], "doc two": [0, 1]})
    return RetrievalSplit(corpus=corpus, queries=queries, qrels={"q1": {"d1": 1}}), encoder


@pytest.mark.parametrize(("remove_self_hits", "expected_ndcg_at_1"), [(False, 0.0), (True, 1.0)])
def test_self_hit_removal_is_a_task_setting(remove_self_hits: bool, expected_ndcg_at_1: float) -> None:
    split, encoder = _toy_retrieval()
    outcome = evaluate_retrieval(
        split,
        retrieval_models(encoder, EmbeddingCore(show_progress=False)),
        split_name="test",
        hf_subset="default",
        languages=("eng-Latn",),
        main_score="ndcg_at_10",
        remove_self_hits=remove_self_hits,
    )
    assert outcome.scores["ndcg_at_1"] == expected_ndcg_at_1
    assert outcome.per_item.item_ids == ["q1"]


def test_corpus_vectors_are_reused_across_splits() -> None:
    split, encoder = _toy_retrieval()
    core = EmbeddingCore(show_progress=False)
    kwargs = dict(split_name="test", hf_subset="default", languages=(), main_score="ndcg_at_10", remove_self_hits=True)
    models = retrieval_models(encoder, core)  # one retriever for the run: it keeps the corpus it indexed
    evaluate_retrieval(split, models, **kwargs)
    calls = encoder.calls
    corpus = split.corpus
    same_documents = Corpus(ids=list(corpus.ids), titles=list(corpus.titles), texts=list(corpus.texts))
    queries = Queries(ids=["q2"], texts=["doc two"])
    other = RetrievalSplit(corpus=same_documents, queries=queries, qrels={"q2": {"d2": 1}})
    evaluate_retrieval(other, models, **kwargs)  # an equal corpus in another object: kept by content, not by id()
    assert encoder.calls == calls + 1  # only the queries were encoded again


def test_sts_scores_and_per_pair_values() -> None:
    rng = np.random.default_rng(0)
    sentences = [f"s{i}" for i in range(20)]
    encoder = TableEncoder({s: rng.normal(size=4).tolist() for s in sentences})
    split = PairSplit(texts1=sentences[:10], texts2=sentences[10:], scores=rng.uniform(0, 5, size=10))
    outcome = evaluate_sts(
        split,
        encoder,
        EmbeddingCore(show_progress=False),
        split_name="test",
        hf_subset="default",
        languages=("eng-Latn",),
        main_score="cosine_spearman",
        score_range=(0.0, 5.0),
    )
    cosine = outcome.per_item.values["cosine"]
    v1 = np.array([encoder.vectors[s] for s in sentences[:10]])
    v2 = np.array([encoder.vectors[s] for s in sentences[10:]])
    expected = (v1 * v2).sum(1) / np.linalg.norm(v1, axis=1) / np.linalg.norm(v2, axis=1)
    assert np.allclose(cosine, expected, atol=1e-6)
    assert outcome.main_score == pytest.approx(spearmanr(split.scores, cosine)[0])
    assert {"cosine_pearson", "manhattan_spearman", "euclidean_pearson", "dot_spearman", "pearson", "spearman"} <= set(
        outcome.scores
    )
