"""Sparse search, ColBERT MaxSim and hybrid fusion: against brute force, hand computations and ranx's formulas."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evalkit.core import EmbeddingCore
from evalkit.core.outputs import MultiVectorRows, SparseRows
from evalkit.errors import EvalkitError
from evalkit.evaluators.retrieval import evaluate_retrieval, ranked_doc_ids
from evalkit.records import Corpus, Queries, RetrievalSplit
from evalkit.search.build import build_retriever
from evalkit.search.dense import TopK
from evalkit.search.fusion import (
    RetrievalSettings,
    candidate_union,
    normalized_run,
    padded_top_k,
    parse_weights,
    reciprocal_rank_fusion,
    run_scores,
    weighted_sum,
)
from evalkit.search.multivector import maxsim_rerank, maxsim_scores
from evalkit.search.sparse import InvertedIndex, sparse_scores, sparse_top_k


def sparse_rows(matrix: np.ndarray) -> SparseRows:
    """The non-zero entries of a (texts × vocabulary) weight matrix as sparse rows."""
    rows, ids = np.nonzero(matrix)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(matrix)))])
    return SparseRows.from_arrays(offsets, ids.astype(np.int32), matrix[rows, ids].astype(np.float32))


def random_weights(rng: np.random.Generator, n: int, vocab: int, density: float) -> np.ndarray:
    """Small integer weights, so sums are exact and equal scores (ties) are common."""
    return rng.integers(1, 3, size=(n, vocab)) * (rng.random((n, vocab)) < density)


def brute_force_ranking(scores: np.ndarray, k: int) -> tuple[list[list[int]], list[list[float]]]:
    """Per query: documents sharing a term (score > 0 with positive weights), score descending, ties by index."""
    indices, values = [], []
    for row in scores:
        matched = np.flatnonzero(row > 0)
        order = sorted(matched.tolist(), key=lambda d: (-row[d], d))[:k]
        indices.append(order)
        values.append([float(row[d]) for d in order])
    return indices, values


@pytest.mark.parametrize(("doc_chunk", "query_block"), [(1 << 16, 256), (7, 3), (1, 1)])
def test_sparse_top_k_equals_brute_force_with_dense_search_tie_order(doc_chunk: int, query_block: int) -> None:
    rng = np.random.default_rng(0)
    docs = random_weights(rng, 60, 40, 0.08)
    queries = random_weights(rng, 12, 45, 0.1)  # ids 40..44 occur in no document
    queries[3] = 0  # a query with no term at all
    full = queries[:, :40] @ docs.T

    index = InvertedIndex.build(sparse_rows(docs), doc_chunk=doc_chunk)
    top = sparse_top_k(sparse_rows(queries), index, 15, query_block=query_block)

    expected_indices, expected_scores = brute_force_ranking(full, 15)
    assert top.indices.shape == (12, 15)
    for row in range(12):
        n = len(expected_indices[row])
        assert top.indices[row, :n].tolist() == expected_indices[row]
        assert top.scores[row, :n].tolist() == expected_scores[row]
        assert (top.indices[row, n:] == -1).all() and np.isneginf(top.scores[row, n:]).all()
    assert (top.indices[3] == -1).all()
    assert len({tuple(s) for s in expected_scores if len(s) != len(set(s))}) > 0  # the data did have ties


def test_sparse_scores_of_candidates_are_the_dot_products() -> None:
    rng = np.random.default_rng(1)
    docs = rng.random((30, 25)) * (rng.random((30, 25)) < 0.2)
    queries = rng.random((5, 25)) * (rng.random((5, 25)) < 0.3)
    candidates = [rng.choice(30, size=8, replace=False) for _ in range(5)]
    scores = sparse_scores(sparse_rows(queries), sparse_rows(docs), candidates)
    for row, docs_of_query in enumerate(candidates):
        expected = docs[docs_of_query].astype(np.float32) @ queries[row].astype(np.float32)
        np.testing.assert_allclose(scores[row], expected, rtol=1e-6)


def colbert_score(query: np.ndarray, doc: np.ndarray) -> float:
    """FlagEmbedding's M3Embedder.colbert_score, verbatim in its arithmetic."""
    q_reps, p_reps = torch.from_numpy(query), torch.from_numpy(doc)
    token_scores = torch.einsum("in,jn->ij", q_reps, p_reps)
    scores, _ = token_scores.max(-1)
    return float(torch.sum(scores) / q_reps.size(0))


def multi_vectors(rng: np.random.Generator, lengths: list[int], dim: int = 6) -> MultiVectorRows:
    vectors = rng.normal(size=(sum(lengths), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return MultiVectorRows.from_lengths(np.array(lengths), vectors)


def test_maxsim_is_flagembeddings_colbert_score() -> None:
    rng = np.random.default_rng(2)
    queries = multi_vectors(rng, [3, 5, 1])
    docs = multi_vectors(rng, [4, 0, 7, 2, 9, 1])
    candidates = [np.array([0, 2, 3]), np.array([5, 4, 1, 0]), np.array([2])]
    averaged = maxsim_scores(queries, docs, candidates)
    summed = maxsim_scores(queries, docs, candidates, average=False)
    for row, docs_of_query in enumerate(candidates):
        for score, total, doc in zip(averaged[row], summed[row], docs_of_query, strict=True):
            if len(docs.row(doc)) == 0:
                assert score == total == 0.0  # an empty document matches nothing
                continue
            expected = colbert_score(queries.row(row), docs.row(doc))
            assert score == pytest.approx(expected, abs=1e-6)
            assert total == pytest.approx(expected * len(queries.row(row)), abs=1e-5)


def test_maxsim_rerank_reorders_the_first_stage_candidates() -> None:
    rng = np.random.default_rng(3)
    queries = multi_vectors(rng, [4, 2])
    docs = multi_vectors(rng, [3, 5, 2, 6, 4])
    first_stage = TopK(indices=np.array([[4, 0, 2, 1], [3, 1, -1, -1]]), scores=np.zeros((2, 4), dtype=np.float32))
    top = maxsim_rerank(queries, docs, first_stage, k=3)
    for row, candidates in enumerate([[4, 0, 2], [3, 1]]):
        expected = sorted(candidates, key=lambda d: -colbert_score(queries.row(row), docs.row(d)))
        assert top.indices[row, : len(expected)].tolist() == expected
    assert top.indices[1, 2] == -1 and np.isneginf(top.scores[1, 2])


# Two made-up runs for one query: dense retrieved docs 3, 1, 2; sparse retrieved 1, 4.
DENSE_RUN = TopK(indices=np.array([[3, 1, 2]]), scores=np.array([[0.9, 0.8, 0.1]], dtype=np.float32))
SPARSE_RUN = TopK(indices=np.array([[1, 4, -1]]), scores=np.array([[0.5, 0.4, -np.inf]], dtype=np.float32))


def test_weighted_fusion_over_the_union_of_candidates_by_hand() -> None:
    candidates = candidate_union([DENSE_RUN, SPARSE_RUN])
    assert candidates[0].tolist() == [1, 2, 3, 4]
    exact = {  # each retriever's own score for every candidate (dense saw doc 4 below its top-k, sparse doc 3)
        "dense": [np.array([0.8, 0.1, 0.9, 0.05])],
        "sparse": [np.array([0.5, 0.0, 0.2, 0.4])],
    }
    fused = weighted_sum(exact, {"dense": 1.0, "sparse": 0.3})
    np.testing.assert_allclose(fused[0], [0.8 + 0.15, 0.1, 0.9 + 0.06, 0.05 + 0.12])
    top = padded_top_k(candidates, fused, 5)
    assert top.indices[0].tolist() == [3, 1, 4, 2, -1]


def test_reciprocal_rank_fusion_by_hand() -> None:
    candidates = candidate_union([DENSE_RUN, SPARSE_RUN])
    fused = reciprocal_rank_fusion([DENSE_RUN, SPARSE_RUN], candidates, k=60)
    np.testing.assert_allclose(fused[0], [1 / 62 + 1 / 61, 1 / 63, 1 / 61, 1 / 62])
    assert padded_top_k(candidates, fused, 4).indices[0].tolist() == [1, 3, 4, 2]


# ranx's fusion formulas (ranx/fusion/rrf.py, wsum.py, normalization/min_max_norm.py), over {doc: score} dicts.
def ranx_min_max(results: dict[int, float]) -> dict[int, float]:
    low, high = min(results.values()), max(results.values())
    return {doc: (score - low) / max(high - low, 1e-9) for doc, score in results.items()}


def ranx_wsum(runs: list[dict[int, float]], weights: list[float]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for res in runs:
        for doc in res:
            if doc not in fused:
                fused[doc] = sum(weights[i] * r.get(doc, 0.0) for i, r in enumerate(runs))
    return fused


def ranx_rrf(runs: list[dict[int, float]], k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for res in runs:
        for i, doc in enumerate(res):  # a ranx Run is sorted best first
            fused[doc] = fused.get(doc, 0.0) + 1 / (k + i + 1)
    return fused


def as_dicts(run: TopK) -> list[dict[int, float]]:
    return [
        {int(d): float(s) for d, s in zip(idx, scores, strict=True) if d >= 0}
        for idx, scores in zip(run.indices, run.scores, strict=True)
    ]


def random_run(rng: np.random.Generator, n_docs: int, k: int) -> TopK:
    indices = np.stack([rng.choice(n_docs, size=k, replace=False) for _ in range(4)])
    scores = rng.random((4, k)).astype(np.float32)
    order = np.argsort(-scores, axis=1)
    return TopK(np.take_along_axis(indices, order, axis=1), np.take_along_axis(scores, order, axis=1))


@pytest.mark.parametrize("norm", ["none", "min-max"])
def test_fusion_equals_ranx_formulas(norm: str) -> None:
    rng = np.random.default_rng(4)
    runs = [random_run(rng, 40, 10), random_run(rng, 40, 15), random_run(rng, 40, 5)]
    weights = [1.0, 0.3, 0.7]
    candidates = candidate_union(runs)
    prepared = [normalized_run(run, norm) for run in runs]
    fused = weighted_sum(
        {str(i): run_scores(run, candidates) for i, run in enumerate(prepared)},
        {str(i): w for i, w in enumerate(weights)},
    )
    rrf = reciprocal_rank_fusion(runs, candidates)
    for q in range(4):
        per_run = [as_dicts(run)[q] for run in runs]
        if norm == "min-max":
            per_run = [ranx_min_max(r) for r in per_run]
        expected = ranx_wsum(per_run, weights)
        assert dict(zip(candidates[q].tolist(), fused[q].tolist(), strict=True)) == pytest.approx(expected)
        expected_rrf = ranx_rrf([as_dicts(run)[q] for run in runs])
        assert dict(zip(candidates[q].tolist(), rrf[q].tolist(), strict=True)) == pytest.approx(expected_rrf)


def test_fusion_equals_ranx_itself_when_installed() -> None:
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(5)
    runs = [random_run(rng, 30, 8), random_run(rng, 30, 8)]
    candidates = candidate_union(runs)
    as_ranx = [ranx.Run({f"q{q}": {f"d{d}": s for d, s in as_dicts(run)[q].items()} for q in range(4)}) for run in runs]
    ours_rrf = reciprocal_rank_fusion(runs, candidates)
    ours_wsum = weighted_sum(
        {"a": run_scores(runs[0], candidates), "b": run_scores(runs[1], candidates)}, {"a": 1.0, "b": 0.3}
    )
    theirs_rrf = ranx.fuse(as_ranx, norm=None, method="rrf", params={"k": 60}).to_dict()
    theirs_wsum = ranx.fuse(as_ranx, norm=None, method="wsum", params={"weights": [1.0, 0.3]}).to_dict()
    for q in range(4):
        docs = [f"d{d}" for d in candidates[q]]
        assert dict(zip(docs, ours_rrf[q].tolist(), strict=True)) == pytest.approx(theirs_rrf[f"q{q}"])
        assert dict(zip(docs, ours_wsum[q].tolist(), strict=True)) == pytest.approx(theirs_wsum[f"q{q}"], rel=1e-6)


def test_retrieval_settings_parse_tag_and_check_against_the_model() -> None:
    assert parse_weights("dense=1, sparse=0.3,colbert=1") == {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
    with pytest.raises(EvalkitError, match="NAME=WEIGHT"):
        parse_weights("lexical=1")
    with pytest.raises(EvalkitError, match="not a number"):
        parse_weights("dense=high")

    assert RetrievalSettings().tag() == ""
    assert RetrievalSettings("sparse").tag() == "+retrieval-sparse"
    assert RetrievalSettings("colbert", candidates=50).tag() == "+retrieval-colbert-k50"
    assert RetrievalSettings("hybrid").tag() == "+retrieval-hybrid"
    assert RetrievalSettings("hybrid", fusion="rrf").tag() == "+retrieval-hybrid-rrf"
    assert RetrievalSettings("hybrid", {"dense": 1, "sparse": 0.5}).tag() == "+retrieval-hybrid-dense1-sparse0.5"

    assert RetrievalSettings("colbert").outputs == ("dense", "colbert")
    assert RetrievalSettings("hybrid", {"sparse": 1, "colbert": 1}).outputs == ("dense", "sparse", "colbert")
    assert RetrievalSettings("hybrid").record() == {
        "mode": "hybrid",
        "candidates": 100,
        "fusion": "weighted",
        "weights": {"dense": 1.0, "sparse": 0.3, "colbert": 1.0},
        "normalization": "none",
    }
    dense_sparse = RetrievalSettings("hybrid").for_encoder(("dense", "sparse"))
    assert dense_sparse.effective_weights == {"dense": 1.0, "sparse": 0.3}
    with pytest.raises(EvalkitError, match="colbert"):
        RetrievalSettings("hybrid", {"dense": 1, "colbert": 1}).for_encoder(("dense", "sparse"))
    with pytest.raises(EvalkitError, match="dense"):
        RetrievalSettings().for_encoder(("sparse",))
    with pytest.raises(EvalkitError, match="hybrid only"):
        RetrievalSettings("dense", {"dense": 1})
    with pytest.raises(EvalkitError, match="retrieval must be"):
        RetrievalSettings("bm25")


class TableEncoder:
    """A fake three-output adapter whose outputs are looked up by text."""

    name = "table"
    output_kinds = ("dense", "sparse", "colbert")

    def __init__(self, table: dict[str, tuple[list[float], dict[int, float], list[list[float]]]]) -> None:
        self.table = table
        self._texts: list[str] = []

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return list(texts)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        start = len(self._texts)
        self._texts.extend(texts)
        return [[start + i] for i in range(len(texts))]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return np.array([self.table[self._texts[ids[0]]][0] for ids in token_ids], dtype=np.float32)

    def embed_outputs(self, token_ids: list[list[int]], outputs: tuple[str, ...]) -> dict[str, object]:
        rows = [self.table[self._texts[ids[0]]] for ids in token_ids]
        matrix = np.zeros((len(rows), 10))
        for i, (_, weights, _) in enumerate(rows):
            for token, weight in weights.items():
                matrix[i, token] = weight
        vectors = [np.array(v, dtype=np.float32) for _, _, v in rows]
        return {
            "dense": self.embed_batch(token_ids),
            "sparse": sparse_rows(matrix),
            "colbert": MultiVectorRows.from_lengths(np.array([len(v) for v in vectors]), np.concatenate(vectors)),
        }

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def _toy() -> tuple[RetrievalSplit, TableEncoder]:
    """Dense puts d2 first; the sparse terms and the ColBERT tokens put the relevant d1 first."""
    table = {
        "the query": ([1.0, 0.0], {1: 1.0, 2: 1.0}, [[1.0, 0.0], [0.0, 1.0]]),
        "doc one": ([0.6, 0.8], {1: 2.0, 2: 1.0}, [[1.0, 0.0], [0.0, 1.0]]),
        "doc two": ([0.9, 0.1], {3: 1.0}, [[0.6, 0.8]]),
        "doc three": ([0.0, 1.0], {2: 0.5}, [[0.0, 1.0]]),
    }
    corpus = Corpus(ids=["d1", "d2", "d3"], titles=["", "", ""], texts=["doc one", "doc two", "doc three"])
    split = RetrievalSplit(corpus=corpus, queries=Queries(ids=["q1"], texts=["the query"]), qrels={"q1": {"d1": 1}})
    return split, TableEncoder(table)


@pytest.mark.parametrize(
    ("retrieval", "expected_ndcg_at_1"),
    [
        (RetrievalSettings(), 0.0),
        (RetrievalSettings("sparse"), 1.0),
        (RetrievalSettings("colbert"), 1.0),
        (RetrievalSettings("hybrid"), 1.0),
        (RetrievalSettings("hybrid", {"dense": 1.0}), 0.0),
        (RetrievalSettings("hybrid", fusion="rrf"), 1.0),
    ],
)
def test_every_retrieval_is_a_setting_of_the_evaluator(retrieval: RetrievalSettings, expected_ndcg_at_1: float) -> None:
    split, encoder = _toy()
    retriever, _ = build_retriever(retrieval, encoder, EmbeddingCore(show_progress=False))
    outcome = evaluate_retrieval(
        split,
        SimpleNamespace(retriever=retriever),
        split_name="test",
        hf_subset="default",
        languages=("eng-Latn",),
        main_score="ndcg_at_10",
        remove_self_hits=False,
    )
    assert outcome.scores["ndcg_at_1"] == expected_ndcg_at_1


def test_hybrid_first_stage_scores_by_hand() -> None:
    split, encoder = _toy()
    core = EmbeddingCore(show_progress=False)
    retriever, _ = build_retriever(RetrievalSettings("hybrid"), encoder, core)
    retriever.index(split.corpus.texts)
    top = retriever.search(split.queries.texts, 10)
    assert len(encoder._texts) == 4  # each text tokenized once: one pass gives the dense, sparse and ColBERT rows
    # dense cosines 0.6, 0.9939, 0; sparse 3, 0, 0.5; ColBERT (mean over 2 query tokens) 1, 0.7, 0.5
    cosine_d2 = 0.9 / np.hypot(0.9, 0.1)
    expected = {0: 0.6 + 0.3 * 3 + 1.0, 1: cosine_d2 + 0 + 0.7, 2: 0.0 + 0.3 * 0.5 + 0.5}
    assert top.indices[0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(top.scores[0], [expected[0], expected[1], expected[2]], rtol=1e-6)


def test_ranked_ids_skip_the_empty_slots_of_a_short_result() -> None:
    top = TopK(indices=np.array([[2, 0, -1, -1]]), scores=np.array([[3.0, 1.0, -np.inf, -np.inf]], dtype=np.float32))
    assert ranked_doc_ids(top, ["a", "b", "c"], ["q"], remove_self_hits=False) == [["c", "a"]]
