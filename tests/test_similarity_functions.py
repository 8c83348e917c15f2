"""The model's own similarity function (``ModelSpec.similarity``: cosine, dot, euclidean, manhattan) wherever mteb
uses it: retrieval search, reranking, the ``similarity`` columns of STS and pair classification, and mteb's own
evaluators (bitext mining, summarization) through the adapter — each equal to what mteb 2.26 computes for a
sentence-transformers model with that ``similarity_fn_name``, and every combination evalkit cannot search
exactly refused before anything is encoded.

The references are mteb's objects themselves: its ``SentenceTransformerEncoderWrapper`` around a
``SentenceTransformer`` (a Pooling module alone: no weights, only its similarity is used) and mteb's
``chunked_full_corpus_search``, fed the same fixed vectors.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from evalkit.core import EmbeddingCore
from evalkit.encoders.protocol import Capabilities
from evalkit.errors import EvalkitError
from evalkit.evaluators.mteb_native import MtebEncoderAdapter
from evalkit.kinds.pair_classification import evaluate_pair_classification_split
from evalkit.kinds.reranking import evaluate_reranking_split
from evalkit.kinds.sts import evaluate_sts_split
from evalkit.metrics import pair_classification as pc_metrics
from evalkit.metrics import sts as sts_metrics
from evalkit.registry.models import ModelSpec
from evalkit.search.build import build_retriever, check_models
from evalkit.search.candidates import candidate_scores
from evalkit.search.dense import exact_top_k
from evalkit.search.fusion import RetrievalSettings
from evalkit.search.similarity import (
    SIMILARITIES,
    aligned_ranges,
    check_similarity,
    pairwise_similarity,
    similarity_matrix,
)

FUNCTIONS = ("dot", "euclidean", "manhattan")
DIM = 16


def _wrapper(similarity: str) -> Any:
    """mteb's wrapper around a sentence-transformers model whose similarity is ``similarity``."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = SentenceTransformer(modules=[Pooling(DIM)], similarity_fn_name=similarity, device="cpu")
        return SentenceTransformerEncoderWrapper(st)


@pytest.fixture(scope="module")
def wrappers() -> dict[str, object]:
    return {name: _wrapper(name) for name in SIMILARITIES}


def _vectors(rows: int, seed: int, *, scale: bool = True) -> np.ndarray:
    """Unnormalised float32 rows (lengths vary, so dot and cosine rank differently)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(rows, DIM)).astype(np.float32)
    return vectors * rng.uniform(0.2, 3.0, size=(rows, 1)).astype(np.float32) if scale else vectors


def _with_ties(docs: np.ndarray) -> np.ndarray:
    """Every fifth document repeated further on: exact ties, which must be broken by index as in trec_eval."""
    return np.concatenate([docs, docs[::5]])


def _reference_top_k(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best columns by (score descending, column ascending) — evalkit's documented order."""
    matrix = scores.numpy()
    order = np.lexsort((np.broadcast_to(np.arange(matrix.shape[1]), matrix.shape), -matrix), axis=1)[:, :k]
    return order, np.take_along_axis(matrix, order, axis=1)


@pytest.mark.parametrize("similarity", FUNCTIONS)
@pytest.mark.parametrize("n_queries", [7, 40])
def test_top_k_equals_the_models_similarity_matrix(wrappers: dict, similarity: str, n_queries: int) -> None:
    """Search under each function: the ranking and the scores of mteb's wrapper's ``similarity`` over the whole
    matrix, bit for bit, exact ties (repeated documents) broken by document index. (The whole corpus is ranked:
    which of two tied documents makes a cut at k is not fixed, in evalkit as in mteb's ``torch.topk``.)"""
    queries, docs = _vectors(n_queries, 1), _with_ties(_vectors(150, 2))
    reference = wrappers[similarity].similarity(queries, docs)
    expected_indices, expected_scores = _reference_top_k(reference, len(docs))
    top = exact_top_k(queries, docs, len(docs), similarity=similarity)
    np.testing.assert_array_equal(top.indices, expected_indices)
    np.testing.assert_array_equal(top.scores, expected_scores)


@pytest.mark.parametrize("similarity", FUNCTIONS)
def test_small_pieces_stream_the_corpus_within_1e6(wrappers: dict, similarity: str) -> None:
    """Pieces of a few rows (``doc_chunk``, ``query_block``) only bound memory: the scores stay within 1e-6 of
    mteb's and the order is mteb's up to scores closer than that (tiny products may take other BLAS kernels)."""
    queries, docs = _vectors(40, 1), _with_ties(_vectors(150, 2))
    reference = wrappers[similarity].similarity(queries, docs).numpy()
    top = exact_top_k(queries, docs, len(docs), similarity=similarity, doc_chunk=13, query_block=16)
    in_mteb_scores = np.take_along_axis(reference, top.indices, axis=1)
    np.testing.assert_allclose(top.scores, in_mteb_scores, rtol=1e-6, atol=1e-6)  # dot products reach ~40
    assert (np.diff(in_mteb_scores, axis=1) <= 1e-6 * np.maximum(1, np.abs(in_mteb_scores[:, 1:]))).all()
    assert all(sorted(row) == list(range(len(docs))) for row in top.indices.tolist())


def test_pieces_are_aligned_to_mteb_s_chunks() -> None:
    assert aligned_ranges(10, 4) == [(0, 4), (4, 10)]
    assert aligned_ranges(8, 4) == [(0, 4), (4, 8)]
    assert aligned_ranges(3, 4) == [(0, 3)]
    assert aligned_ranges(110, 20, chunk=50) == [(0, 20), (20, 50), (50, 70), (70, 100), (100, 110)]
    assert aligned_ranges(0, 4) == []


@pytest.mark.parametrize("doc_chunk", [13, 4096])
def test_cosine_search_is_unchanged_and_within_1e6_of_mteb(wrappers: dict, doc_chunk: int) -> None:
    """Cosine keeps evalkit's numpy search (unit rows, float32 BLAS): scores within 1e-6 of mteb's ``cos_sim``,
    and its order is mteb's up to scores closer than that (BLAS edge kernels may split an exact tie by an ulp)."""
    queries, docs = _vectors(7, 1), _with_ties(_vectors(150, 2))
    reference = wrappers["cosine"].similarity(queries, docs).numpy()
    top = exact_top_k(queries, docs, len(docs), doc_chunk=doc_chunk)
    np.testing.assert_allclose(top.scores, np.take_along_axis(reference, top.indices, axis=1), rtol=0, atol=1e-6)
    in_mteb_scores = np.take_along_axis(reference, top.indices, axis=1)
    assert (np.diff(in_mteb_scores, axis=1) <= 1e-6).all()
    named = exact_top_k(queries, docs, len(docs), doc_chunk=doc_chunk, similarity="cosine")
    np.testing.assert_array_equal(named.indices, top.indices)
    np.testing.assert_array_equal(named.scores, top.scores)


def test_tied_documents_come_in_index_order() -> None:
    queries, docs = _vectors(5, 3), _vectors(40, 4)
    docs[[3, 17, 31]] = docs[9]  # four identical documents
    for similarity in FUNCTIONS:
        top = exact_top_k(queries, docs, 40, similarity=similarity)
        for row in range(len(queries)):
            tied = [int(i) for i in top.indices[row] if i in (3, 9, 17, 31)]
            assert tied == [3, 9, 17, 31]


def test_euclidean_uses_the_arithmetic_torch_chose_for_mteb_s_shapes() -> None:
    """torch's ``cdist`` computes pair by pair when both sides have at most 25 rows, else through a matrix
    product; the search asks for what mteb's call (all queries × 50,000-document chunks) got, bit for bit."""
    queries = _vectors(6, 5)
    few_docs = _vectors(20, 6)  # mteb: 6 × 20, pair by pair
    top = exact_top_k(queries, few_docs, 20, similarity="euclidean", doc_chunk=7)
    expected = -torch.cdist(torch.from_numpy(queries), torch.from_numpy(few_docs))
    np.testing.assert_array_equal(top.scores, _reference_top_k(expected, 20)[1])
    docs = _vectors(50_010, 7)  # mteb: a chunk of 50,000 (matrix product), then one of 10 (pair by pair)
    top = exact_top_k(queries, docs, 30, similarity="euclidean")
    first = -torch.cdist(torch.from_numpy(queries), torch.from_numpy(docs[:50_000]))
    tail = -torch.cdist(torch.from_numpy(queries), torch.from_numpy(docs[50_000:]))
    indices, scores = _reference_top_k(torch.cat([first, tail], dim=1), 30)
    np.testing.assert_array_equal(top.indices, indices)
    np.testing.assert_array_equal(top.scores, scores)


def _mteb_search(wrapper: object, queries: np.ndarray, docs: np.ndarray, k: int) -> list[list[tuple[float, str]]]:
    """mteb's own chunked search (the one ``SearchEncoderWrapper`` runs, with its default 50,000-document chunks)
    over fixed vectors."""
    import mteb
    from datasets import Dataset
    from mteb.models.search_wrappers import chunked_full_corpus_search

    chunk_size = 50_000
    chunks = iter(range(0, len(docs), chunk_size))

    def encode(*args: object, **kwargs: object) -> np.ndarray:
        start = next(chunks)
        return docs[start : start + chunk_size]

    corpus = Dataset.from_dict({"id": [f"d{i:03d}" for i in range(len(docs))], "text": ["x"] * len(docs)})
    heaps = chunked_full_corpus_search(
        task_corpus=corpus,
        corpus_chunk_size=chunk_size,
        query_idx_to_id={i: f"q{i}" for i in range(len(queries))},
        query_embeddings=queries,
        task_metadata=mteb.get_task("SciFact").metadata,
        hf_subset="default",
        hf_split="test",
        top_k=k,
        encode_kwargs={"show_progress_bar": False},
        encode_fn=encode,
        similarity_fn=wrapper.similarity,  # type: ignore[attr-defined]
        search_k_offset=1,
    )
    return [sorted(heaps[f"q{i}"], key=lambda pair: (-pair[0], pair[1])) for i in range(len(queries))]


class FixedVectors:
    """A model whose vector for a text is looked up in a table (the texts are ``q0``, ``d012``, ...)."""

    name = "fixed-vectors"
    capabilities = Capabilities(outputs=("dense",))

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.texts: list[str] = []

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        start = len(self.texts)
        self.texts.extend(texts)
        return [[start + i] for i in range(len(texts))]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return np.stack([self.table[self.texts[ids[0]]] for ids in token_ids])

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def test_a_dot_model_is_searched_by_dot_as_mteb_searches_it(wrappers: dict) -> None:
    """End to end through the run's retriever: a ModelSpec naming dot ranks unnormalised vectors otherwise than
    cosine, and exactly as mteb's chunked search with the model's similarity does."""
    queries, docs = _vectors(12, 8), _vectors(200, 9)
    doc_ids = [f"d{i:03d}" for i in range(len(docs))]
    table = {f"q{i}": v for i, v in enumerate(queries)} | dict(zip(doc_ids, docs, strict=True))
    spec = ModelSpec(name="fixed-vectors", similarity="dot")
    runs = {}
    for similarity in ("cosine", spec.similarity):
        retriever, _ = build_retriever(
            RetrievalSettings(), FixedVectors(table), EmbeddingCore(show_progress=False), similarity=similarity
        )
        retriever.index(doc_ids)
        runs[similarity] = retriever.search([f"q{i}" for i in range(len(queries))], 10)
    assert (runs["dot"].indices != runs["cosine"].indices).any()
    assert retriever.describe()["similarity"] == "dot"
    for row, expected in enumerate(_mteb_search(wrappers["dot"], queries, docs, 10)):
        assert [doc_ids[i] for i in runs["dot"].indices[row]] == [doc_id for _, doc_id in expected]
        np.testing.assert_array_equal(runs["dot"].scores[row], np.float32([score for score, _ in expected]))


@pytest.mark.parametrize("similarity", FUNCTIONS)
def test_mteb_s_own_search_gives_the_same_run(wrappers: dict, similarity: str) -> None:
    queries, docs = _vectors(30, 10), _vectors(130, 11)
    top = exact_top_k(queries, docs, 15, similarity=similarity)
    for row, expected in enumerate(_mteb_search(wrappers[similarity], queries, docs, 15)):
        assert [f"d{i:03d}" for i in top.indices[row]] == [doc_id for _, doc_id in expected]
        np.testing.assert_array_equal(top.scores[row], np.float32([score for score, _ in expected]))


@pytest.mark.parametrize("similarity", FUNCTIONS)
def test_reranking_scores_are_the_models_similarity_per_query(wrappers: dict, similarity: str) -> None:
    """mteb's reranking scores each query (1 × d) against its gathered candidates; 30 and 10 candidates put torch's
    euclidean on either side of its 25-row switch."""
    queries, docs = _vectors(4, 12), _vectors(60, 13)
    candidates = [np.arange(30), np.arange(10)[::-1].copy(), np.array([5, 5, 7]), np.zeros(0, dtype=np.int64)]
    scores = candidate_scores(queries, docs, candidates, similarity=similarity)
    for row, rows in enumerate(candidates):
        if len(rows) == 0:
            assert scores[row].shape == (0,)
            continue
        query = torch.as_tensor(queries[row]).unsqueeze(0)
        expected = wrappers[similarity].similarity(query, torch.as_tensor(docs[rows]))[0].numpy()
        np.testing.assert_array_equal(scores[row], expected)


def test_pairwise_dot_is_mteb_s_similarity_pairwise(wrappers: dict) -> None:
    from mteb.similarity_functions import compute_pairwise_similarity

    left, right = _vectors(50, 14), _vectors(50, 15)
    expected = compute_pairwise_similarity(wrappers["dot"], left, right).numpy()
    for metrics in (sts_metrics, pc_metrics):
        got = metrics.pair_similarities(left, right, similarity="dot")["similarity"]
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("similarity", ["euclidean", "manhattan"])
def test_pairwise_distances_are_the_models_own(wrappers: dict, similarity: str) -> None:
    """mteb 2.26's wrapper raises for a pairwise euclidean or manhattan; the column is then the model's own
    ``similarity_pairwise`` (sentence-transformers'), which mteb uses for a model registered without a function."""
    from mteb.similarity_functions import compute_pairwise_similarity

    left, right = _vectors(50, 16), _vectors(50, 17)
    with pytest.raises(ValueError, match="Similarity function not specified"):
        compute_pairwise_similarity(wrappers[similarity], left, right)
    expected = wrappers[similarity].model.similarity_pairwise(left, right).numpy()
    for metrics in (sts_metrics, pc_metrics):
        columns = metrics.pair_similarities(left, right, similarity=similarity)
        np.testing.assert_array_equal(columns["similarity"], expected)
        np.testing.assert_allclose(columns[similarity], expected, rtol=0, atol=1e-5)  # mteb's float64 column


def test_cosine_columns_are_unchanged() -> None:
    left, right = _vectors(30, 18), _vectors(30, 19)
    for metrics in (sts_metrics, pc_metrics):
        default, named = (
            metrics.pair_similarities(left, right),
            metrics.pair_similarities(left, right, similarity="cosine"),
        )
        for name in default:
            np.testing.assert_array_equal(default[name], named[name])
    sts = sts_metrics.pair_similarities(left, right)
    np.testing.assert_array_equal(sts["similarity"], sts["cosine"])


def test_mteb_adapter_scores_with_the_models_similarity(wrappers: dict) -> None:
    """Bitext mining and summarization call ``model.similarity`` (2-D or 1-D), STS-like code ``similarity_pairwise``."""
    left, right = _vectors(8, 20), _vectors(11, 21)
    for similarity in SIMILARITIES:
        adapter = MtebEncoderAdapter(None, None, prompts={}, name="m", revision=None, similarity=similarity)  # type: ignore[arg-type]
        assert adapter.mteb_model_meta.similarity_fn_name == similarity
        reference = wrappers[similarity]
        np.testing.assert_allclose(adapter.similarity(left, right), reference.similarity(left, right), atol=1e-6)
        assert float(adapter.similarity(left[0], right[0])) == pytest.approx(
            float(reference.similarity(left[0], right[0]))
        )
        if similarity in ("cosine", "dot"):
            np.testing.assert_array_equal(
                adapter.similarity_pairwise(left, right[:8]), reference.similarity_pairwise(left, right[:8])
            )


def _pair_split(n: int) -> tuple[list[str], list[str]]:
    return [f"a{i}" for i in range(n)], [f"b{i}" for i in range(n)]


def test_kinds_take_the_similarity_from_the_model_spec(wrappers: dict) -> None:
    """STS, pair classification and reranking read ``models.model.similarity``: a dot model's ``similarity``
    columns are its dot products, a cosine model's stay cosine."""
    from evalkit.encoders.prompts import NO_PROMPTS
    from evalkit.kinds.kind import SplitArgs
    from evalkit.records import PairLabelSplit, PairSplit

    left, right = _vectors(40, 22), _vectors(40, 23)
    texts1, texts2 = _pair_split(40)
    table = dict(zip(texts1, left, strict=True)) | dict(zip(texts2, right, strict=True))
    labels = (np.arange(40) % 2).astype(np.int64)
    gold = np.linspace(0, 5, 40)
    normalised = (gold - 0.0) / (5.0 - 0.0)  # as the evaluator normalises by the score range
    spec = SimpleNamespace(score_range=(0.0, 5.0), name="t", input_roles=("symmetric", "symmetric"))
    args = SplitArgs(spec, "test", "default", ("eng-Latn",), "cosine_spearman", NO_PROMPTS)  # type: ignore[arg-type]
    expected = wrappers["dot"].similarity_pairwise(left, right).numpy()
    for similarity in ("cosine", "dot"):
        models = SimpleNamespace(
            model=ModelSpec(name="m", similarity=similarity),
            encoder=FixedVectors(table),
            core=EmbeddingCore(show_progress=False),
        )
        sts = evaluate_sts_split(PairSplit(texts1, texts2, gold), models, args)  # type: ignore[arg-type]
        columns = sts_metrics.pair_similarities(left, right, similarity=similarity)
        reference = sts_metrics.sts_scores(columns, normalised)
        assert sts.scores == reference
        pairs = evaluate_pair_classification_split(
            PairLabelSplit(texts1, texts2, labels),
            models,  # type: ignore[arg-type]
            SplitArgs(spec, "test", "default", ("eng-Latn",), "max_ap", NO_PROMPTS),  # type: ignore[arg-type]
        )
        own = pc_metrics.pair_classification_scores(
            pc_metrics.pair_similarities(left, right, similarity=similarity), labels
        )
        assert pairs.scores == own
    dot_scores = sts_metrics.sts_scores({"similarity": expected}, normalised)
    assert sts.scores["spearman"] == dot_scores["spearman"]


def test_reranking_kind_ranks_by_the_models_similarity() -> None:
    """One query, three candidates: the relevant one is a short vector along the query (cosine 1, dot 0.1), so
    cosine ranks it first and dot second, behind a long vector at 45 degrees."""
    from evalkit.encoders.prompts import NO_PROMPTS
    from evalkit.kinds.kind import SplitArgs
    from evalkit.records import Corpus, Queries, RerankingSplit

    axis = np.eye(DIM, dtype=np.float32)
    table = {"q0": axis[0], "short": 0.1 * axis[0], "long": 3 * axis[0] + 3 * axis[1], "across": axis[1]}
    doc_ids = ["short", "long", "across"]
    split = RerankingSplit(
        queries=Queries(ids=["q0"], texts=["q0"]),
        candidates=[doc_ids],
        corpus=Corpus(ids=doc_ids, titles=[""] * 3, texts=doc_ids),
        qrels={"q0": {"short": 1}},
    )
    args = SplitArgs(SimpleNamespace(name="t"), "test", "default", ("eng-Latn",), "mrr_at_10", NO_PROMPTS)  # type: ignore[arg-type]
    mrr = {}
    for similarity in SIMILARITIES:
        models = SimpleNamespace(
            model=ModelSpec(name="m", similarity=similarity),
            encoder=FixedVectors(table),
            core=EmbeddingCore(show_progress=False),
        )
        mrr[similarity] = evaluate_reranking_split(split, models, args).scores["mrr_at_10"]  # type: ignore[arg-type]
    assert mrr == {"cosine": 1.0, "dot": 0.5, "euclidean": 1.0, "manhattan": 1.0}


def _toy() -> FixedVectors:
    return FixedVectors({})


@pytest.mark.parametrize(
    ("similarity", "given", "option"),
    [
        ("dot", {"search_backend": "faiss"}, "--search-backend faiss"),
        ("euclidean", {"search_backend": "faiss"}, "--search-backend faiss"),
        ("manhattan", {"distributed": object()}, "--backend ray"),
        ("dot", {"distributed": object()}, "--backend ray"),
    ],
)
def test_backends_that_search_by_cosine_refuse_other_functions(similarity: str, given: dict, option: str) -> None:
    with pytest.raises(EvalkitError, match=option) as refused:
        check_models(RetrievalSettings(), _toy(), similarity=similarity, **given)
    assert similarity in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("similarity", ["euclidean", "manhattan"])
def test_distances_are_not_fused(similarity: str) -> None:
    from tests.test_retrievers import ToyM3

    with pytest.raises(EvalkitError, match="--retrieval hybrid"):
        check_models(RetrievalSettings("hybrid"), ToyM3(), similarity=similarity)
    with pytest.raises(EvalkitError, match="--retrieval colbert"):
        check_models(RetrievalSettings("colbert"), ToyM3(), similarity=similarity)
    check_models(RetrievalSettings("hybrid"), ToyM3(), similarity="dot")  # dot scores fuse like cosine ones


def test_unknown_similarity_and_faiss_search_are_refused() -> None:
    with pytest.raises(EvalkitError, match="'MaxSim' is not one evalkit computes"):
        check_similarity("MaxSim")
    with pytest.raises(EvalkitError, match="similarity"):
        check_models(RetrievalSettings(), _toy(), similarity="MaxSim")
    with pytest.raises(EvalkitError, match="--search-backend faiss"):
        exact_top_k(_vectors(2, 1), _vectors(5, 2), 3, search_backend="faiss", similarity="dot")
    with pytest.raises(EvalkitError, match="document vector 3 has NaN"):
        docs = _vectors(5, 2)
        docs[3, 0] = np.nan
        exact_top_k(_vectors(2, 1), docs, 3, similarity="dot")


def test_lexical_models_ignore_the_similarity() -> None:
    from evalkit.retrievers.bm25 import BM25Retriever

    check_models(RetrievalSettings(), BM25Retriever(), similarity="euclidean", search_backend="faiss")


def test_matrix_and_pairwise_agree() -> None:
    left, right = _vectors(9, 26), _vectors(9, 27)
    for similarity in SIMILARITIES:
        diagonal = torch.diagonal(similarity_matrix(left, right, similarity)).numpy()
        np.testing.assert_allclose(pairwise_similarity(left, right, similarity).numpy(), diagonal, atol=1e-5)


def test_matrix_functions_are_mteb_s_and_sentence_transformers_own() -> None:
    """Bit for bit: mteb's ``cos_sim`` / ``dot_score`` / ``euclidean_sim`` and sentence-transformers'
    ``manhattan_sim`` (mteb has none), on 2-D and 1-D inputs."""
    from mteb import similarity_functions as mteb_functions
    from sentence_transformers.util import similarity as st_functions

    left, right = _vectors(30, 28), _vectors(40, 29)
    references = {
        "cosine": mteb_functions.cos_sim,
        "dot": mteb_functions.dot_score,
        "euclidean": mteb_functions.euclidean_sim,
        "manhattan": st_functions.manhattan_sim,
    }
    for similarity, reference in references.items():
        np.testing.assert_array_equal(similarity_matrix(left, right, similarity), reference(left, right))
        np.testing.assert_array_equal(similarity_matrix(left[0], right[0], similarity), reference(left[:1], right[:1]))
