"""The model's own similarity function (sentence-transformers' ``similarity_fn_name``), computed as mteb computes it.

mteb 2.26 scores with the model's similarity wherever its evaluators call ``model.similarity`` (retrieval search,
reranking, bitext mining, summarization) or ``model.similarity_pairwise`` (the ``similarity`` columns of STS and
pair classification). For a sentence-transformers model both come from sentence-transformers' own functions, in
float32 torch: ``dot`` is ``torch.mm(a, b.T)``, ``euclidean`` is ``-torch.cdist(a, b, p=2)``, ``manhattan`` is
``-torch.cdist(a, b, p=1)``; pairwise, ``dot`` is ``(a * b).sum(-1)`` (mteb's ``pairwise_dot_score``) and the two
distances are sentence-transformers' ``pairwise_euclidean_sim`` / ``pairwise_manhattan_sim``. The same torch
operations on the same float32 rows give the same bits (the matrix products were checked tile by tile against
whole-matrix ones), so rankings and ties are mteb's.

Cosine is not computed here: evalkit's own cosine paths (numpy search over unit rows, scikit-learn's paired
cosine) stay as they were, so every cosine model's scores are unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.errors import EvalkitError
from evalkit.registry.st_folder import SIMILARITIES

if TYPE_CHECKING:
    import torch

    from evalkit.search.corpus_chunks import CorpusChunks


MTEB_CORPUS_CHUNK = 50_000
"""mteb's ``SearchEncoderWrapper`` scores the queries against this many documents at a time; torch's ``cdist``
picks its euclidean arithmetic from the shapes it is given, so the search asks for the arithmetic mteb's shapes got."""

_CDIST_MM_ROWS = 25
"""``torch.cdist(p=2)`` (default mode) computes through a matrix product when either side has more rows than this,
else pair by pair; the two differ in the last bits."""


def check_similarity(similarity: str) -> str:
    """``similarity`` if evalkit computes it, else a one-line error naming the setting."""
    if similarity not in SIMILARITIES:
        raise EvalkitError(
            f"similarity {similarity!r} is not one evalkit computes (choose one of {', '.join(SIMILARITIES)})",
            field="similarity",
        )
    return similarity


def _tensor(vectors: Any) -> torch.Tensor:
    """float32 rows as torch sees them in mteb (its ``_convert_to_tensor``: numpy as float32, halves upcast)."""
    import torch

    if isinstance(vectors, torch.Tensor):
        return vectors.float() if vectors.dtype != torch.float32 else vectors
    return torch.as_tensor(np.asarray(vectors, dtype=np.float32))


def _batch(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.unsqueeze(0) if tensor.dim() == 1 else tensor


def similarity_matrix(vectors1: Any, vectors2: Any, similarity: str) -> torch.Tensor:
    """``[i, j]`` = similarity of ``vectors1[i]`` and ``vectors2[j]``: the model's ``similarity`` (1-D inputs are
    one row, as sentence-transformers takes them). Cosine is mteb's ``cos_sim``."""
    import torch

    a, b = _batch(_tensor(vectors1)), _batch(_tensor(vectors2))
    if check_similarity(similarity) == "cosine":
        normalize = torch.nn.functional.normalize
        return normalize(a, p=2, dim=1) @ normalize(b, p=2, dim=1).transpose(0, 1)
    if similarity == "dot":
        return torch.mm(a, b.transpose(0, 1))
    return -torch.cdist(a, b, p=2.0 if similarity == "euclidean" else 1.0)


def pairwise_similarity(vectors1: Any, vectors2: Any, similarity: str) -> torch.Tensor:
    """``[i]`` = similarity of ``vectors1[i]`` and ``vectors2[i]``: the model's ``similarity_pairwise``.

    Cosine and dot are mteb's ``pairwise_cos_sim`` / ``pairwise_dot_score`` (what its wrapper computes from the
    model's registered function). For euclidean and manhattan mteb 2.26's wrapper has no pairwise function of its
    own (it raises); these are sentence-transformers' ``pairwise_euclidean_sim`` / ``pairwise_manhattan_sim``, the
    model's own ``similarity_pairwise``, which mteb uses for a model registered without a function.
    """
    import torch

    a, b = _tensor(vectors1), _tensor(vectors2)
    if a.shape != b.shape:
        raise ValueError(f"the two sides differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    if check_similarity(similarity) == "cosine":
        normalize = torch.nn.functional.normalize
        return (normalize(a, p=2, dim=-1) * normalize(b, p=2, dim=-1)).sum(dim=-1)
    if similarity == "dot":
        return (a * b).sum(dim=-1)
    if similarity == "euclidean":
        return -torch.linalg.vector_norm(a - b, dim=-1)
    return -torch.sum(torch.abs(a - b), dim=-1)


def finite_float32_rows(vectors: np.ndarray, *, what: str, first_row: int = 0) -> np.ndarray:
    """Rows as float32 (as mteb converts them), refusing a row that is not finite: a NaN score ranks nowhere."""
    rows = np.asarray(vectors)
    if rows.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {rows.shape}")
    rows = rows.astype(np.float32, copy=rows.dtype != np.float32)
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        row = first_row + int(np.argmin(finite))
        raise EvalkitError(f"{what} vector {row} has NaN or infinite values")
    return rows


def aligned_ranges(n_rows: int, piece: int, chunk: int = MTEB_CORPUS_CHUNK) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``n_rows``: each of mteb's ``chunk``-row chunks cut into pieces of
    ``piece`` rows, the last piece of a chunk taking its remainder (so a piece is never shorter than ``piece``
    unless mteb's chunk itself is, and then it is that very chunk).

    A float32 matrix product's last bit can depend on the shapes BLAS is given, and it does for small ones (a
    handful of rows or columns take other kernels); pieces of at least a few thousand rows, aligned to mteb's
    chunks, gave mteb's bits in every shape tried (up to 4,100 queries, 60,000 documents, 768 dimensions).
    """
    if piece < 1:
        raise ValueError(f"piece must be at least 1, got {piece}")
    ranges = []
    for chunk_start in range(0, n_rows, chunk):
        chunk_stop = min(chunk_start + chunk, n_rows)
        start = chunk_start
        while start < chunk_stop:
            stop = chunk_stop if chunk_stop - start < 2 * piece else start + piece
            ranges.append((start, stop))
            start = stop
    return ranges


class TorchTiles:
    """Score tiles of queries against rows of the corpus under ``dot``, ``euclidean`` or ``manhattan``, with the
    torch operation sentence-transformers' ``similarity`` runs (what mteb's search calls).

    ``n_queries`` and ``n_docs`` are the whole search's: mteb scores all queries against chunks of
    :data:`MTEB_CORPUS_CHUNK` documents, and torch's euclidean ``cdist`` chooses its arithmetic from those shapes
    (pair by pair only where both had at most 25 rows), so each tile is computed with the arithmetic mteb's call
    got. One float32 copy of the current rows is held, in a buffer reused from piece to piece.
    """

    def __init__(self, similarity: str, *, n_queries: int, n_docs: int) -> None:
        if check_similarity(similarity) == "cosine":
            raise ValueError("cosine is searched over unit rows (evalkit.search.dense), not here")
        self.similarity = similarity
        self.n_queries = n_queries
        self.n_docs = n_docs
        self._buffer = np.empty((0, 0), dtype=np.float32)

    def docs(self, corpus: CorpusChunks, start: int, stop: int) -> np.ndarray:
        """Corpus rows ``[start, stop)`` as float32, copied (a memory-mapped corpus's pages are released)."""
        if self._buffer.shape[0] < stop - start or self._buffer.shape[1] != corpus.dim:
            self._buffer = np.empty((stop - start, corpus.dim), dtype=np.float32)
        docs = corpus.read_rows(start, stop, self._buffer[: stop - start])
        return finite_float32_rows(docs, what="document", first_row=start)

    def tile(self, queries: np.ndarray, docs: np.ndarray, first_doc: int) -> np.ndarray:
        """``[i, j]``: the similarity of query ``i`` and document ``first_doc + j``."""
        import torch

        block, rows = torch.from_numpy(queries), torch.from_numpy(docs)
        if self.similarity == "dot":
            return torch.mm(block, rows.transpose(0, 1)).numpy()
        if self.similarity == "manhattan":
            return torch.cdist(block, rows, p=1.0).neg_().numpy()
        chunk_start = first_doc - first_doc % MTEB_CORPUS_CHUNK
        mteb_rows = min(MTEB_CORPUS_CHUNK, self.n_docs - chunk_start)
        by_product = self.n_queries > _CDIST_MM_ROWS or mteb_rows > _CDIST_MM_ROWS
        mode = "use_mm_for_euclid_dist" if by_product else "donot_use_mm_for_euclid_dist"
        return torch.cdist(block, rows, p=2.0, compute_mode=mode).neg_().numpy()


__all__ = [
    "MTEB_CORPUS_CHUNK",
    "SIMILARITIES",
    "TorchTiles",
    "aligned_ranges",
    "check_similarity",
    "finite_float32_rows",
    "pairwise_similarity",
    "similarity_matrix",
]
