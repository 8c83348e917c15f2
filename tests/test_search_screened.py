"""The bf16-screened exact search: its cut-off never drops a pair that could make the top k, and its results are
brute force's (float32 cosine, ties by index) for any chunking, tiling and thread count."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning")

from evalkit.search import dense, screened  # noqa: E402
from evalkit.search.dense import exact_top_k, l2_normalized  # noqa: E402
from evalkit.search.running_top_k import best_first  # noqa: E402


@pytest.fixture
def screening(monkeypatch: pytest.MonkeyPatch) -> None:
    """Screen every search, whatever its size and whether or not this CPU has bf16 instructions (torch then
    emulates them: slower, the same bound)."""
    monkeypatch.setattr(dense, "SCREEN_MIN_SCORES", 0)
    monkeypatch.setattr(dense, "bf16_screening_available", lambda: True)


def brute_force(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    full = l2_normalized(queries).astype(np.float64) @ l2_normalized(docs).T.astype(np.float64)
    scores, order = best_first(full, np.broadcast_to(np.arange(full.shape[1]), full.shape))
    return order[:, :k], scores[:, :k]


@pytest.mark.parametrize("dim", [16, 384, 1024])
def test_cutoff_never_drops_a_pair_above_the_threshold(dim: int) -> None:
    """For every pair: were the threshold a hair below its exact score, its bf16 score would still pass."""
    rng = np.random.default_rng(dim)
    queries = rng.normal(size=(64, dim)).astype(np.float32)
    docs = rng.normal(size=(600, dim)).astype(np.float32)
    docs[:50] += 3 * queries[:50]  # high scores too, where the output rounding is largest
    docs[50:60] = 0.0
    docs[60:70, :] = 0.0
    docs[60:70, 0] = 1.0  # one-hot rows: all their length in one component
    exact_q, exact_d = torch.from_numpy(l2_normalized(queries)), torch.from_numpy(l2_normalized(docs))
    exact = (exact_q.double() @ exact_d.double().T).numpy()
    rough = torch.mm(exact_q.bfloat16(), exact_d.bfloat16().T).float().numpy()
    just_below = np.nextafter(exact.astype(np.float32) - 1e-6, -np.inf)
    assert (rough >= screened.screen_cutoff(just_below.reshape(-1), dim).reshape(exact.shape)).all()
    margin = just_below - screened.screen_cutoff(just_below.reshape(-1), dim).reshape(exact.shape)
    assert (np.abs(exact - rough) < margin).all()  # the bound holds either way round
    assert margin.max() < 0.01  # and is not vacuous: about 1% of a large corpus passes the screen


def test_pair_scores_are_float32_dot_products_independent_of_company() -> None:
    rng = np.random.default_rng(1)
    queries = torch.from_numpy(l2_normalized(rng.normal(size=(7, 48)).astype(np.float32)))
    docs = torch.from_numpy(l2_normalized(rng.normal(size=(30, 48)).astype(np.float32)))
    query, doc = np.repeat(np.arange(7), 30), np.tile(np.arange(30), 7)
    everything = screened.pair_scores(queries, docs, query, doc)
    assert everything.dtype == np.float32
    assert np.allclose(everything, (queries @ docs.T).numpy().reshape(-1), atol=1e-6)
    some = np.flatnonzero(np.random.default_rng(2).random(len(query)) < 0.1)
    assert np.array_equal(screened.pair_scores(queries, docs, query[some], doc[some]), everything[some])


@pytest.mark.usefixtures("screening")
@pytest.mark.parametrize(("doc_chunk", "k"), [(7, 5), (64, 30), (500, 100), (37, 1)])
def test_screened_search_equals_brute_force(doc_chunk: int, k: int) -> None:
    rng = np.random.default_rng(doc_chunk)
    queries = rng.normal(size=(40, 32)).astype(np.float32)
    docs = rng.normal(size=(2000, 32)).astype(np.float32)
    docs[1500:1510] = docs[3]  # exact duplicates: equal scores, ordered by index
    top = exact_top_k(queries, [docs[:900], docs[900:]], k, doc_chunk=doc_chunk, query_block=16, threads=2)
    expected_indices, expected_scores = brute_force(queries, docs, k)
    assert np.array_equal(top.indices, expected_indices)
    assert np.allclose(top.scores, expected_scores, atol=1e-6)


@pytest.mark.usefixtures("screening")
def test_screened_results_do_not_depend_on_threads_or_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    queries, docs = rng.normal(size=(50, 24)).astype(np.float32), rng.normal(size=(3000, 24)).astype(np.float32)
    one = exact_top_k(queries, docs, 60, doc_chunk=100, threads=1)
    monkeypatch.setattr(screened, "SCREEN_TILE_QUERIES", 7)
    many = exact_top_k(queries, docs, 60, doc_chunk=100, threads=4)
    assert np.array_equal(one.indices, many.indices) and np.array_equal(one.scores, many.scores)


@pytest.mark.usefixtures("screening")
def test_torch_threads_are_given_back() -> None:
    before = torch.get_num_threads()
    rng = np.random.default_rng(4)
    exact_top_k(rng.normal(size=(5, 8)), rng.normal(size=(300, 8)), 10, doc_chunk=50, threads=2)
    assert torch.get_num_threads() == before


def test_small_searches_are_not_screened(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the size where it pays, the plain float32 search runs (and torch need not be imported)."""
    monkeypatch.setattr(dense, "screened_chunks", None)  # would fail if called
    rng = np.random.default_rng(5)
    top = exact_top_k(rng.normal(size=(5, 8)), rng.normal(size=(300, 8)), 10, doc_chunk=50)
    assert top.indices.shape == (5, 10)


def test_integer_comparison_of_bf16_bits_is_the_float_comparison() -> None:
    rng = np.random.default_rng(6)
    rough = torch.from_numpy(rng.normal(scale=0.3, size=(20, 500)).astype(np.float32)).bfloat16()
    cutoff = rng.uniform(0.01, 0.6, size=20).astype(np.float32)
    floats = rough.float().numpy()
    got = screened._passing(rough, cutoff)
    assert set(np.flatnonzero(floats >= cutoff[:, None])) <= set(got)  # nothing above the cut-off is lost
    lowest = np.repeat(cutoff * (1 - 2.0**-7), 500)  # the cut-off rounded down to bf16's 8 bits, at the least
    assert (floats.reshape(-1)[got] >= lowest[got]).all()
    cutoff[3] = -0.1  # a negative cut-off takes the float comparison
    assert np.array_equal(screened._passing(rough, cutoff), np.flatnonzero(floats >= cutoff[:, None]))


def test_pairs_overflowing_the_buffer_are_merged_whole() -> None:
    """More candidates from one tile than the buffer holds: they are merged at once, nothing is lost."""
    from evalkit.search.running_top_k import RunningTopK

    rng = np.random.default_rng(7)
    scores = rng.normal(size=(3, 400)).astype(np.float32)
    best = RunningTopK(3, 5)
    best.add_tile(scores[:, :10], 0, 0)
    query, doc = np.divmod(np.arange(3 * 390), 390)
    best.add_pairs(query, doc + 10, scores[:, 10:].reshape(-1), slice(0, 3))
    best.flush()
    _, got_indices = best_first(best.scores, best.indices)
    assert np.array_equal(got_indices, np.argsort(-scores, axis=1, kind="stable")[:, :5])
