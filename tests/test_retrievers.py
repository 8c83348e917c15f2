"""One retriever interface: each implementation ranks as the code it wraps, corpora are reused by content, and
every combination the run cannot make is refused by the builder before anything is encoded."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest

from evalkit.core import EmbeddingCore
from evalkit.core.outputs import MultiVectorRows, SparseRows
from evalkit.encoders.protocol import PAIR_SCORES, Capabilities
from evalkit.errors import EvalkitError
from evalkit.evaluators.retrieval import evaluate_retrieval
from evalkit.records import Corpus, Queries, RetrievalSplit
from evalkit.retrievers.bm25 import BM25Retriever
from evalkit.search.build import build_retriever, check_task
from evalkit.search.dense import TopK, exact_top_k
from evalkit.search.fusion import (
    RetrievalSettings,
    candidate_union,
    padded_top_k,
    reciprocal_rank_fusion,
    weighted_sum,
)
from evalkit.search.multivector import maxsim_rerank, maxsim_scores
from evalkit.search.rerank import RerankStage, rerank_top_k
from evalkit.search.retriever import Retriever
from evalkit.search.sparse import sparse_scores, sparse_top_k

DOCS = [
    f"document {i} about {' '.join(w for w in ('cats', 'dogs', 'birds', 'fish') if i % (len(w) - 2))}"
    for i in range(30)
]
QUERIES = ["cats and dogs", "fish", "birds of a feather", "document 7"]
VOCAB = {w: i for i, w in enumerate(sorted({w for t in DOCS + QUERIES for w in t.split()}))}


def _vector(word: str, dim: int = 8) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32)


class ToyM3:
    """Dense, sparse and ColBERT outputs from the words of a text; counts the texts it encodes."""

    name = "toy-m3"
    output_kinds = ("dense", "sparse", "colbert")
    capabilities = Capabilities(outputs=("dense", "sparse", "colbert"))

    def __init__(self, outputs: tuple[str, ...] = ("dense", "sparse", "colbert")) -> None:
        self.capabilities = Capabilities(outputs=outputs)  # type: ignore[arg-type]
        self.output_kinds = outputs
        self.texts: list[str] = []
        self.encoded = 0

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        start = len(self.texts)
        self.texts.extend(texts)
        return [[start + i] for i in range(len(texts))]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        self.encoded += len(token_ids)
        return np.stack([sum(_vector(w) for w in self.texts[ids[0]].split()) for ids in token_ids])

    def embed_outputs(self, token_ids: list[list[int]], outputs: tuple[str, ...]) -> dict[str, object]:
        texts = [self.texts[ids[0]] for ids in token_ids]
        result: dict[str, object] = {"dense": self.embed_batch(token_ids)}
        rows = [sorted({VOCAB[w] for w in t.split() if w in VOCAB}) for t in texts]
        offsets = np.cumsum([0, *map(len, rows)])
        ids = np.array([i for r in rows for i in r], dtype=np.int64)
        result["sparse"] = SparseRows.from_arrays(offsets, ids, np.ones(len(ids), dtype=np.float32))
        words = [t.split() for t in texts]
        vectors = np.stack([_vector(w) / np.linalg.norm(_vector(w)) for ws in words for w in ws])
        result["colbert"] = MultiVectorRows.from_lengths(np.array([len(ws) for ws in words]), vectors)
        return {kind: result[kind] for kind in outputs}

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name, "outputs": list(self.output_kinds)}


class WordOverlapScorer:
    """A pair scorer: the number of query words in the document."""

    name = "overlap"
    capabilities = PAIR_SCORES

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def tokenize_pairs(self, pairs: list[tuple[str, str]]) -> list[list[int]]:
        start = len(self.pairs)
        self.pairs.extend(pairs)
        return [[start + i] for i in range(len(pairs))]

    def score_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        pairs = [self.pairs[ids[0]] for ids in token_ids]
        return np.array([len(set(q.split()) & set(d.split())) for q, d in pairs], dtype=np.float32)

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def _core() -> EmbeddingCore:
    return EmbeddingCore(show_progress=False)


def _searched(retriever: Retriever, k: int = 10) -> TopK:
    retriever.index(DOCS)
    return retriever.search(QUERIES, k)


def _same(a: TopK, b: TopK) -> None:
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


def _outputs(core: EmbeddingCore, model: ToyM3) -> tuple[dict, dict]:
    kinds = ("dense", "sparse", "colbert")
    return (
        core.encode_outputs(model, QUERIES, "query", outputs=kinds),
        core.encode_outputs(model, DOCS, "document", outputs=kinds),
    )


def test_dense_is_exact_top_k_over_the_cores_vectors() -> None:
    model, core = ToyM3(("dense",)), _core()
    retriever, _ = build_retriever(RetrievalSettings(), model, core)
    expected = exact_top_k(core.encode(model, QUERIES, "query"), core.encode(model, DOCS, "document"), 10)
    _same(_searched(retriever), expected)
    assert retriever.describe()["tag"] == ""


def test_sparse_colbert_and_hybrids_rank_as_the_search_functions() -> None:
    model, core = ToyM3(), _core()
    queries, docs = _outputs(core, model)
    dense = exact_top_k(queries["dense"], docs["dense"], 100)
    runs = {
        "dense": dense,
        "sparse": sparse_top_k(queries["sparse"], docs["sparse"], 100),
        "colbert": maxsim_rerank(queries["colbert"], docs["colbert"], dense, 100),
    }
    _same(
        _searched(build_retriever(RetrievalSettings("sparse"), ToyM3(), _core())[0], 10),
        sparse_top_k(queries["sparse"], docs["sparse"], 10),
    )
    _same(_searched(build_retriever(RetrievalSettings("colbert"), ToyM3(), _core())[0]), runs["colbert"])
    candidates = candidate_union(list(runs.values()))
    width = max(len(c) for c in candidates)
    rrf = padded_top_k(candidates, reciprocal_rank_fusion(list(runs.values()), candidates), width)
    _same(_searched(build_retriever(RetrievalSettings("hybrid", fusion="rrf"), ToyM3(), _core())[0]), rrf)
    exact = {
        "dense": [np.asarray(s) for s in _dense_scores(queries["dense"], docs["dense"], candidates)],
        "sparse": sparse_scores(queries["sparse"], docs["sparse"], candidates),
        "colbert": maxsim_scores(queries["colbert"], docs["colbert"], candidates),
    }
    weights = {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
    fused = padded_top_k(candidates, weighted_sum(exact, weights), width)
    hybrid, _ = build_retriever(RetrievalSettings("hybrid"), ToyM3(), _core())
    _same(_searched(hybrid), fused)
    assert hybrid.describe()["tag"] == "+retrieval-hybrid"


def _dense_scores(queries: np.ndarray, docs: np.ndarray, candidates: list[np.ndarray]) -> list[np.ndarray]:
    from evalkit.search.candidates import candidate_scores

    return candidate_scores(queries, docs, candidates)


def test_bm25_and_the_two_model_hybrid_rank_as_bm25_and_the_fusion() -> None:
    bm25 = BM25Retriever()
    lexical, _ = build_retriever(RetrievalSettings(), bm25, _core())
    _same(_searched(lexical, 10), bm25.top_k(DOCS, QUERIES, 10))
    model, core = ToyM3(("dense",)), _core()
    dense_run = exact_top_k(core.encode(model, QUERIES, "query"), core.encode(model, DOCS, "document"), 100)
    bm25_queries, bm25_docs = bm25.sparse_rows(DOCS, QUERIES)  # BM25 as sparse vectors, as the fusion takes it
    runs = [dense_run, sparse_top_k(bm25_queries, bm25_docs, 100)]
    candidates = candidate_union(runs)
    expected = padded_top_k(candidates, reciprocal_rank_fusion(runs, candidates), max(len(c) for c in candidates))
    settings = RetrievalSettings("hybrid", {"dense": 1.0, "sparse": 1.0}, fusion="rrf")
    two, _ = build_retriever(settings, ToyM3(("dense",)), _core(), sparse_model=bm25, sparse_tag_name="bm25")
    _same(_searched(two), expected)
    assert two.describe()["tag"] == "+retrieval-hybrid-rrf-dense-sparse+sparse-bm25"


def test_the_rerank_stage_is_rerank_top_k_over_the_first_stage() -> None:
    model, core, scorer = ToyM3(("dense",)), _core(), WordOverlapScorer()
    first = exact_top_k(core.encode(model, QUERIES, "query"), core.encode(model, DOCS, "document"), 20)
    expected = rerank_top_k(core, scorer, QUERIES, DOCS, first, 5)
    stage = RerankStage(model=scorer, top_k=5)  # type: ignore[arg-type]
    reranked, _ = build_retriever(RetrievalSettings(), ToyM3(("dense",)), _core(), rerank=stage)
    _same(_searched(reranked, 20), expected)
    assert reranked.describe()["tag"] == "+rerank-overlap-k5"


class InMemoryBackend:
    """The Ray backend's interface over this process: the corpus encoded by the core, searched exactly."""

    def __init__(self) -> None:
        self.corpora = 0

    def encode_corpus(self, core, encoder, texts, role, *, prompt=""):
        self.corpora += 1
        return core.encode(encoder, texts, role, prompt=prompt)

    def top_k(self, queries: np.ndarray, corpus: np.ndarray, k: int) -> TopK:
        return exact_top_k(queries, corpus, k)

    def record(self) -> dict[str, object]:
        return {"backend": "memory"}


def test_the_distributed_backend_is_a_retriever_too() -> None:
    backend = InMemoryBackend()
    sharded, _ = build_retriever(RetrievalSettings(), ToyM3(("dense",)), _core(), distributed=backend)
    local, _ = build_retriever(RetrievalSettings(), ToyM3(("dense",)), _core())
    _same(_searched(sharded), _searched(local))
    sharded.index(list(DOCS))
    assert backend.corpora == 1


def _split(docs: list[str]) -> RetrievalSplit:
    corpus = Corpus(ids=[f"d{i}" for i in range(len(docs))], titles=[""] * len(docs), texts=list(docs))
    return RetrievalSplit(corpus=corpus, queries=Queries(ids=["q"], texts=["cats"]), qrels={"q": {"d1": 1}})


def test_a_corpus_is_reused_by_content_never_by_object() -> None:
    model = ToyM3(("dense",))
    retriever, _ = build_retriever(RetrievalSettings(), model, _core())
    models = SimpleNamespace(retriever=retriever)
    kwargs = dict(split_name="test", hf_subset="default", languages=(), main_score="ndcg_at_10", remove_self_hits=False)
    first = evaluate_retrieval(_split(DOCS), models, **kwargs)
    encoded = model.encoded
    again = evaluate_retrieval(_split(list(DOCS)), models, **kwargs)  # equal documents, another object
    assert model.encoded == encoded and again.scores == first.scores
    other = [*DOCS[:-1], "another document"]
    evaluate_retrieval(_split(other), models, **kwargs)
    assert model.encoded == encoded + len(set(other)) + 1  # other content: its distinct texts and the query again


@pytest.mark.parametrize(
    ("settings", "model_outputs", "extra", "message"),
    [
        (RetrievalSettings("colbert"), ("dense",), {}, "needs the model's colbert output"),
        (RetrievalSettings("sparse"), ("dense",), {}, "needs the model's sparse output"),
        (RetrievalSettings("dense"), ("dense",), {"sparse_model": "dense"}, "applies to --retrieval hybrid only"),
        (RetrievalSettings("hybrid"), ("dense",), {"sparse_model": "dense"}, "not sparse ones"),
        (RetrievalSettings("sparse"), ("dense", "sparse"), {"distributed": "ray"}, "--backend ray runs dense"),
        (RetrievalSettings(), ("dense",), {"distributed": "ray", "rerank": "rerank"}, "--backend ray runs dense"),
    ],
)
def test_each_refusal_comes_from_the_builder_before_any_encoding(settings, model_outputs, extra, message) -> None:
    model = ToyM3(model_outputs)
    made = {
        "sparse_model": {"dense": ToyM3(("dense",))},
        "distributed": {"ray": InMemoryBackend()},
        "rerank": {"rerank": RerankStage(model=WordOverlapScorer(), top_k=3)},  # type: ignore[arg-type]
    }
    given = {name: made[name][value] for name, value in extra.items()}
    with pytest.raises(EvalkitError, match=message):
        build_retriever(settings, model, _core(), **given)
    assert model.encoded == 0 and not model.texts


def test_a_lexical_model_takes_no_other_retrieval_or_task() -> None:
    bm25 = BM25Retriever()
    for extra, message in [
        ({"sparse_model": ToyM3()}, "a hybrid needs a vector model"),
        ({"distributed": InMemoryBackend()}, "--backend ray shards"),
    ]:
        with pytest.raises(EvalkitError, match=message):
            build_retriever(RetrievalSettings("hybrid" if "sparse_model" in extra else "dense"), bm25, _core(), **extra)
    with pytest.raises(EvalkitError, match="--retrieval sparse needs a vector model"):
        build_retriever(RetrievalSettings("sparse"), bm25, _core())
    with pytest.raises(EvalkitError, match="cannot score task 'STSBenchmark'"):
        check_task("STSBenchmark", "STS", encoder=bm25, settings=RetrievalSettings(), reranked=False)
    with pytest.raises(EvalkitError, match="--reranker applies to Retrieval tasks"):
        check_task("STSBenchmark", "STS", encoder=ToyM3(), settings=RetrievalSettings(), reranked=True)
    with pytest.raises(EvalkitError, match="dense retrieval only"):
        check_task("MKQA", "AnswerRetrieval", encoder=ToyM3(), settings=RetrievalSettings("sparse"), reranked=False)
