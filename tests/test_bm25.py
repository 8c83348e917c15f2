"""BM25 as a model: the right document wins, scores equal the formula and mteb's own BM25, ties are ordered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evalkit.encoders import load_encoder
from evalkit.encoders.protocol import Encoder
from evalkit.errors import EvalkitError
from evalkit.registry.models import resolve_model
from evalkit.retrievers import LexicalRetriever
from evalkit.retrievers.bm25 import LANGUAGE_SETTINGS, BM25Retriever, best_k, task_language
from evalkit.search.dense import TopK
from evalkit.search.sparse import csr_of

pytest.importorskip("bm25s")
pytest.importorskip("Stemmer")


def test_the_document_sharing_the_rare_terms_wins() -> None:
    corpus = [
        "The weather in Paris is mild in spring.",
        "Vitamin D deficiency increases the risk of bone fractures in older adults.",
        "Stock markets fell sharply on Monday.",
        "Bone density declines with age.",
    ]
    top = BM25Retriever().top_k(corpus, ["does vitamin D deficiency cause fractures?", "markets falling"], k=2)
    assert isinstance(top, TopK)
    assert top.indices.dtype == np.int64 and top.scores.dtype == np.float32
    assert top.indices.shape == top.scores.shape == (2, 2)
    assert top.indices[0, 0] == 1 and top.indices[1, 0] == 2  # "falling" and "fell" differ; "markets" stems to "market"
    assert (np.diff(top.scores, axis=1) <= 0).all()


def test_scores_equal_the_lucene_bm25_formula_by_hand() -> None:
    """Three documents whose terms are no stopwords and stem to themselves: N = 3, lengths 3, 2, 1, avgdl = 2."""
    corpus = ["cat cat dog", "dog fish", "bird"]
    k1, b = 1.5, 0.75

    def idf(df: int) -> float:
        return math.log(1 + (3 - df + 0.5) / (df + 0.5))

    def tf_part(tf: int, length: int) -> float:
        return tf / (tf + k1 * (1 - b + b * length / 2))

    expected = [
        idf(1) * tf_part(2, 3) + idf(2) * tf_part(1, 3),  # "cat" twice, "dog" once
        idf(2) * tf_part(1, 2),  # "dog" once
        0.0,
    ]
    top = BM25Retriever().top_k(corpus, ["cat dog"], k=3)
    assert top.indices.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(top.scores[0], expected, rtol=1e-6)


def test_equal_scores_are_ordered_by_document_index_even_at_the_cut() -> None:
    corpus = ["alpha", "beta", "gamma alpha", "alpha", "delta", "beta"]
    top = BM25Retriever().top_k(corpus, ["alpha", "zebra"], k=3)
    assert top.indices[0].tolist() == [0, 3, 2]  # the two one-word "alpha" documents tie; the longer one scores less
    assert top.indices[1].tolist() == [0, 1, 2]  # no match at all: every score 0, the first documents by index
    assert top.scores[1].tolist() == [0.0, 0.0, 0.0]


def test_best_k_is_exact_at_the_cut() -> None:
    scores = np.array([1.0, 3.0, 2.0, 2.0, 3.0, 2.0], dtype=np.float32)
    indices, best = best_k(scores, 4)
    assert indices.tolist() == [1, 4, 2, 3] and best.tolist() == [3.0, 3.0, 2.0, 2.0]


def test_k_beyond_the_corpus_and_empty_inputs() -> None:
    retriever = BM25Retriever()
    assert retriever.top_k(["one doc", "two docs"], ["doc"], k=10).indices.shape == (1, 2)
    assert retriever.top_k(["one doc"], [], k=10).indices.shape == (0, 1)
    assert retriever.top_k([], ["doc"], k=10).indices.shape == (1, 0)


def test_stopwords_alone_score_nothing() -> None:
    top = BM25Retriever().top_k(["the cat of the house", "a dog and a bone"], ["the of and a"], k=2)
    assert top.scores.tolist() == [[0.0, 0.0]]


def test_chinese_is_split_into_characters() -> None:
    corpus = ["我爱北京天安门", "今天天气很好", "北京是中国的首都"]
    top = BM25Retriever().top_k(corpus, ["首都北京"], k=3, languages=["cmn-Hans"])
    assert top.indices[0, 0] == 2 and top.indices[0, 1] == 0


def test_language_of_a_subset_falls_back_to_english_as_mteb_does() -> None:
    assert task_language(["deu-Latn"]) == "deu"
    assert task_language(["eng-Latn", "deu-Latn"]) == "eng"
    assert task_language([]) == "eng"


def test_language_table_is_mtebs() -> None:
    bm25_module = pytest.importorskip("mteb.models.model_implementations.bm25")
    assert dict(bm25_module._ISO3_TO_LANG) == LANGUAGE_SETTINGS


@pytest.mark.parametrize("language", ["eng", "fin", "cmn"])  # stopword list + stemmer; stemmer + frequent terms; chars
def test_scores_equal_mtebs_bm25_on_scifact(mirror: Path, language: str) -> None:
    """Our terms and scores against mteb's own ``BM25Tokenizer`` + bm25s, on 300 SciFact documents and 30 queries."""
    import bm25s

    bm25_module = pytest.importorskip("mteb.models.model_implementations.bm25")
    with (mirror / "SciFact" / "corpus.jsonl").open() as handle:
        rows = [json.loads(line) for _, line in zip(range(300), handle, strict=False)]
    corpus = ["\n".join([row.get("title", ""), row["text"]]) for row in rows]
    with (mirror / "SciFact" / "queries.jsonl").open() as handle:
        queries = [json.loads(line)["text"] for _, line in zip(range(30), handle, strict=False)]

    tokenizer = bm25_module.BM25Tokenizer(language=language)
    reference = bm25s.BM25(k1=1.5, b=0.75, delta=0.5, method="lucene")
    reference.index(tokenizer.fit_transform(corpus), show_progress=False)
    ref_docs, ref_scores = reference.retrieve(tokenizer.transform(queries), k=len(corpus), show_progress=False)
    expected = np.zeros((len(queries), len(corpus)), dtype=np.float32)
    np.put_along_axis(expected, np.asarray(ref_docs), np.asarray(ref_scores, dtype=np.float32), axis=1)

    top = BM25Retriever().top_k(corpus, queries, k=len(corpus), languages=[f"{language}-Latn"])
    ours = np.zeros_like(expected)
    np.put_along_axis(ours, top.indices, top.scores, axis=1)
    assert expected.max() > 0
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_bm25_resolves_as_a_model_and_loads_as_a_lexical_retriever() -> None:
    for name in ("bm25", "bm25s", "mteb/baseline-bm25s"):
        spec = resolve_model(name)
        assert (spec.name, spec.adapter, spec.local_path) == ("mteb/baseline-bm25s", "bm25", None)
    retriever = load_encoder(resolve_model("bm25"))
    assert isinstance(retriever, LexicalRetriever) and not isinstance(retriever, Encoder)
    fingerprint = retriever.fingerprint()
    assert {"k1": 1.5, "b": 0.75, "method": "lucene"}.items() <= fingerprint.items()
    assert fingerprint["bm25s"]


@pytest.mark.parametrize("language", ["eng", "fin", "cmn"])
def test_the_sparse_form_scores_what_bm25_scores(mirror: Path, language: str) -> None:
    """BM25 as sparse vectors (a hybrid's sparse retriever): query · document equals the BM25 score of every pair,
    a repeated query term counted twice as bm25s counts it, and a term the corpus lacks dropped."""
    with (mirror / "SciFact" / "corpus.jsonl").open() as handle:
        rows = [json.loads(line) for _, line in zip(range(300), handle, strict=False)]
    corpus = [f"{row.get('title', '')} {row['text']}" for row in rows]
    with (mirror / "SciFact" / "queries.jsonl").open() as handle:
        queries = [json.loads(line)["text"] for _, line in zip(range(30), handle, strict=False)]
    queries += ["cells cells cells", "zzzunseenterm"]
    retriever = BM25Retriever()
    top = retriever.top_k(corpus, queries, k=len(corpus), languages=[f"{language}-Latn"])
    expected = np.zeros((len(queries), len(corpus)), dtype=np.float64)
    np.put_along_axis(expected, top.indices, top.scores, axis=1)

    query_rows, doc_rows = retriever.sparse_rows(corpus, queries, languages=[f"{language}-Latn"])
    assert (len(query_rows), len(doc_rows)) == (len(queries), len(corpus))
    vocab = int(max(doc_rows.token_ids.max(), query_rows.token_ids.max(initial=0))) + 1
    dot = (csr_of(query_rows, vocab) @ csr_of(doc_rows, vocab).T).toarray()
    np.testing.assert_allclose(dot, expected, rtol=1e-5, atol=1e-5)
    assert expected[:-2].max(axis=1).min() > 0
    if language != "cmn":  # (in characters every letter of it is in the corpus)
        assert query_rows.row(len(queries) - 1).size == 0 and not expected[-1].any()  # an unseen term is no term
    if language == "eng":
        assert query_rows.row(len(queries) - 2)["weight"].tolist() == [3.0]  # "cells" three times


def test_bm25l_has_no_sparse_form() -> None:
    with pytest.raises(EvalkitError, match="non-occurrence"):
        BM25Retriever(method="bm25l").sparse_rows(["a b"], ["a"])
