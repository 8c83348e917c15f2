"""The embedding core (order, dedup, batching) and exact dense search (chunked = brute force)."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.core import EmbeddingCore
from evalkit.core.embed import dedup, length_sorted_batches
from evalkit.search.dense import exact_top_k, l2_normalized


class CountingEncoder:
    """A fake adapter: a text's vector encodes its length and first character; counts what it was asked."""

    name = "fake"

    def __init__(self) -> None:
        self.encoded: list[str] = []
        self.batches: list[int] = []
        self.vocab: dict[int, str] = {}

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        ids = []
        for text in texts:
            key = len(self.vocab)
            self.vocab[key] = text
            ids.append([key] * len(text))
        return ids

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        self.batches.append(len(token_ids))
        texts = [self.vocab[ids[0]] for ids in token_ids]
        self.encoded.extend(texts)
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def test_dedup_keeps_first_seen_order() -> None:
    distinct, inverse = dedup(["b", "a", "b", "c", "a"])
    assert distinct == ["b", "a", "c"]
    assert inverse.tolist() == [0, 1, 0, 2, 1]


def test_batches_are_length_sorted_longest_first() -> None:
    batches = length_sorted_batches(np.array([3, 9, 1, 7, 5]), batch_size=2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]


def test_core_restores_order_and_encodes_each_text_once() -> None:
    encoder = CountingEncoder()
    texts = ["ccc", "a", "bb", "a", "dddd", "ccc", "e" * 10]
    vectors = EmbeddingCore(batch_size=2, show_progress=False).encode(encoder, texts, "document")
    assert sorted(encoder.encoded) == sorted(set(texts))
    assert vectors[:, 0].tolist() == [len(t) for t in texts]
    assert vectors[:, 1].tolist() == [ord(t[0]) for t in texts]
    assert encoder.batches == [2, 2, 1]


def test_core_applies_the_prompt() -> None:
    encoder = CountingEncoder()
    EmbeddingCore(show_progress=False).encode(encoder, ["x"], "query", prompt="q:")
    assert encoder.encoded == ["q:x"]


@pytest.mark.parametrize(("doc_chunk", "query_block"), [(7, 3), (50, 1000), (1, 1)])
def test_chunked_search_equals_brute_force(doc_chunk: int, query_block: int) -> None:
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(60, 8)).astype(np.float32)
    queries = rng.normal(size=(11, 8)).astype(np.float32)
    top = exact_top_k(queries, docs, 10, doc_chunk=doc_chunk, query_block=query_block)
    full = l2_normalized(queries) @ l2_normalized(docs).T
    expected = np.argsort(-full, axis=1)[:, :10]
    assert np.array_equal(top.indices, expected)
    assert np.allclose(top.scores, np.take_along_axis(full, expected, axis=1))


def test_search_with_k_larger_than_corpus() -> None:
    rng = np.random.default_rng(1)
    top = exact_top_k(rng.normal(size=(2, 4)), rng.normal(size=(5, 4)), 1000, doc_chunk=2)
    assert top.indices.shape == (2, 5)
    assert sorted(top.indices[0].tolist()) == [0, 1, 2, 3, 4]


def test_core_reads_cached_vectors_and_keeps_roles_apart(tmp_path) -> None:
    from evalkit.cache import EmbeddingCache

    texts = ["alpha", "beta", "gamma", "alpha"]
    first = CountingEncoder()
    core = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path), chunk_size=2)
    expected = core.encode(first, texts, "document")
    assert sorted(first.encoded) == ["alpha", "beta", "gamma"]

    second = CountingEncoder()
    again = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path)).encode(second, texts, "document")
    assert second.encoded == [] and np.array_equal(again, expected)

    third = CountingEncoder()
    EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path)).encode(third, ["alpha", "delta"], "query")
    assert sorted(third.encoded) == ["alpha", "delta"]  # the same text as a query is another vector


def test_out_of_memory_halves_the_budget_and_retries() -> None:
    class FlakyEncoder(CountingEncoder):
        def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
            if len(token_ids) > 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().embed_batch(token_ids)

    encoder = FlakyEncoder()
    core = EmbeddingCore(show_progress=False, token_budget=100)
    texts = [f"text number {i}" for i in range(7)]
    vectors = core.encode(encoder, texts, "document")
    assert vectors[:, 0].tolist() == [len(t) for t in texts]
    assert core.stats["oom_retries"] >= 1 and core.token_budget < 100
    with pytest.raises(RuntimeError, match="unrelated"):

        class BrokenEncoder(CountingEncoder):
            def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
                raise RuntimeError("unrelated failure")

        EmbeddingCore(show_progress=False).encode(BrokenEncoder(), texts, "document")


def test_token_budget_batches_bound_padded_tokens() -> None:
    from evalkit.core.batching import token_budget_batches

    lengths = np.array([100, 3, 50, 7, 100, 20, 1])
    batches = token_budget_batches(lengths, token_budget=200, max_batch_size=4)
    assert sorted(i for b in batches for i in b.tolist()) == list(range(7))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 200
        assert len(batch) <= 4


def test_replicas_share_the_batches_and_the_order_is_kept() -> None:
    from evalkit.encoders.replicas import ReplicatedEncoder, parse_devices

    first, second = CountingEncoder(), CountingEncoder()
    second.vocab = first.vocab  # replicas of one model share the tokenizer
    replicated = ReplicatedEncoder([first, second])
    texts = [f"{'x' * (i % 7 + 1)} {i}" for i in range(40)]
    vectors = EmbeddingCore(show_progress=False, batch_size=4).encode(replicated, texts, "document")
    assert vectors[:, 0].tolist() == [len(t) for t in texts]
    assert first.batches and second.batches  # both devices worked
    assert sorted(first.encoded + second.encoded) == sorted(texts)
    assert parse_devices("cuda:0,cuda:1") == ["cuda:0", "cuda:1"] and parse_devices("cpu") == ["cpu"]
