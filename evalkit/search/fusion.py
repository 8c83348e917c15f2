"""Hybrid retrieval: the settings of a run's retrieval, and how the runs of several retrievers fuse into one.

A retriever's run is a :class:`TopK` (dense search, sparse search, or a ColBERT rerank of dense candidates). Two
fusions, as ranx names them:

- **weighted sum** (BGE-M3's hybrid): the candidates are the union of the retrievers' top-k; each candidate gets
  ``Σ_r w_r · s_r(q, d)``, where ``s_r`` is retriever ``r``'s exact score for that pair — computed for every
  candidate, so a document one retriever ranked below its top-k still gets its real score from it. BGE-M3's paper
  weighs dense 1, sparse 0.3, ColBERT 1 (FlagEmbedding's ``compute_score`` takes ``[0.4, 0.2, 0.4]`` and divides
  by their sum: another scale, much the same order). Raw scores by default, as BGE-M3; ranx's ``min-max`` and
  ``zmuv`` normalisations are options of :func:`weighted_sum` (per query, over its candidates).
- **reciprocal rank fusion** (Cormack et al. 2009, ranx's ``rrf``): ``Σ_r 1 / (k + rank_r(d))`` with ``k = 60``
  and ranks from 1 within each retriever's own run; a document absent from a run gets nothing from it. Weights only
  choose the retrievers (those with a non-zero weight), as ranx's rrf has none.

Fused rankings are :class:`TopK` records like any other: best first, equal scores by document index, and index
-1 / score -inf in the slots of a query with fewer candidates than the record is wide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from evalkit.encoders.protocol import OutputKind
from evalkit.errors import EvalkitError
from evalkit.search.dense import TopK
from evalkit.search.running_top_k import best_first

RETRIEVALS: tuple[str, ...] = ("dense", "sparse", "colbert", "hybrid")
"""``dense``: cosine top-k (the default); ``sparse``: term-weight dot products over an inverted index;
``colbert``: MaxSim rerank of the dense top candidates; ``hybrid``: a fusion of those."""

FUSIONS: tuple[str, ...] = ("weighted", "rrf")
RETRIEVERS: tuple[str, ...] = ("dense", "sparse", "colbert")
BGE_M3_WEIGHTS: Mapping[str, float] = {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
"""The BGE-M3 paper's hybrid weights (``dense + 0.3 · sparse + colbert``)."""

RRF_K = 60
"""ranx's and Cormack et al.'s constant."""

CANDIDATES = 100
"""Candidates per query a first stage hands to a ColBERT rerank or a fusion (the BGE-M3 paper reranks 100)."""

NORMALIZATIONS: tuple[str, ...] = ("none", "min-max", "zmuv")
_MIN_DENOMINATOR = 1e-9  # ranx's floor for a min-max range or a standard deviation


def parse_weights(text: str) -> dict[str, float]:
    """``"dense=1,sparse=0.3,colbert=1"`` → ``{"dense": 1.0, "sparse": 0.3, "colbert": 1.0}``."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in RETRIEVERS:
            raise EvalkitError(
                f"expected NAME=WEIGHT pairs with NAME one of {', '.join(RETRIEVERS)}, got {part!r}", field="weights"
            )
        try:
            weights[name] = float(value)
        except ValueError:
            raise EvalkitError(f"the weight of {name} is not a number: {value!r}", field="weights") from None
    return weights


@dataclass(frozen=True)
class RetrievalSettings:
    """How a run retrieves: which retriever (or fusion of retrievers), with which weights and candidate depth.

    ``weights`` applies to ``hybrid`` only; empty means BGE-M3's. ``candidates`` is the depth of the first stage
    that a ColBERT rerank or a fusion works on. ``normalization`` (ranx's ``min-max`` or ``zmuv``, per query over
    its candidates) puts a weighted hybrid's retrievers on one scale first: needed when they are different models
    (cosines in [-1, 1] against BM25 scores in the tens), not for BGE-M3's own heads, which it fuses raw.
    """

    mode: str = "dense"
    weights: Mapping[str, float] = field(default_factory=dict)
    fusion: str = "weighted"
    candidates: int = CANDIDATES
    rrf_k: int = RRF_K
    normalization: str = "none"

    def __post_init__(self) -> None:
        self._check_choices()
        self._check_weights()
        if self.fusion != "weighted" and self.mode != "hybrid":
            raise EvalkitError("a fusion applies to --retrieval hybrid only", field="fusion")
        if self.normalization != "none" and (self.mode != "hybrid" or self.fusion != "weighted"):
            raise EvalkitError("a score normalization applies to a weighted hybrid only", field="normalization")

    def _check_choices(self) -> None:
        if self.mode not in RETRIEVALS:
            raise EvalkitError(
                f"retrieval must be one of {', '.join(RETRIEVALS)}, got {self.mode!r}", field="retrieval"
            )
        if self.fusion not in FUSIONS:
            raise EvalkitError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}", field="fusion")
        if self.candidates < 1:
            raise EvalkitError(f"candidates must be positive, got {self.candidates}", field="candidates")
        if self.rrf_k < 0:
            raise EvalkitError(f"the RRF constant must not be negative, got {self.rrf_k}", field="rrf_k")
        if self.normalization not in NORMALIZATIONS:
            raise EvalkitError(
                f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {self.normalization!r}",
                field="normalization",
            )

    def _check_weights(self) -> None:
        unknown = sorted(set(self.weights) - set(RETRIEVERS))
        if unknown:
            raise EvalkitError(f"unknown retriever(s) in weights: {', '.join(unknown)}", field="weights")
        if any(not math.isfinite(w) for w in self.weights.values()):
            raise EvalkitError("weights must be finite numbers", field="weights")
        if self.weights and not any(self.weights.values()):
            raise EvalkitError("at least one weight must be non-zero", field="weights")
        if self.weights and self.mode != "hybrid":
            raise EvalkitError("weights apply to --retrieval hybrid only", field="weights")

    @property
    def effective_weights(self) -> dict[str, float]:
        """The hybrid's weights in retriever order, zeros dropped (BGE-M3's when none were given)."""
        weights = self.weights or BGE_M3_WEIGHTS
        return {name: float(weights[name]) for name in RETRIEVERS if weights.get(name)}

    @property
    def retrievers(self) -> tuple[str, ...]:
        """The runs this retrieval makes."""
        return tuple(self.effective_weights) if self.mode == "hybrid" else (self.mode,)

    @property
    def outputs(self) -> tuple[OutputKind, ...]:
        """The encoder outputs the retrievers need (ColBERT reranks dense candidates, so it needs dense too)."""
        needed = set(self.retrievers) | ({"dense"} if "colbert" in self.retrievers else set())
        return tuple(kind for kind in RETRIEVERS if kind in needed)  # type: ignore[misc]

    def for_encoder(self, available: Sequence[str]) -> RetrievalSettings:
        """These settings checked against what a model gives; a hybrid with no weights given keeps BGE-M3's weights
        of the outputs the model has (a dense + sparse model: dense 1, sparse 0.3)."""
        settings = self
        if self.mode == "hybrid" and not self.weights:
            kept = {name: w for name, w in BGE_M3_WEIGHTS.items() if name in available}
            settings = replace(self, weights=kept or dict(BGE_M3_WEIGHTS))
        lacking = [kind for kind in settings.outputs if kind not in available]
        if lacking:
            raise EvalkitError(
                f"--retrieval {self.mode} needs the model's {', '.join(lacking)} output(s); it gives "
                f"{', '.join(available)}",
                field="retrieval",
            )
        return settings

    def tag(self) -> str:
        """The revision-folder tag of a non-default retrieval (``+retrieval-hybrid``), empty for dense."""
        if self.mode == "dense":
            return ""
        tag = f"+retrieval-{self.mode}"
        if self.mode == "hybrid":
            tag += "-rrf" if self.fusion == "rrf" else ""
            if self.fusion == "rrf" and set(self.effective_weights) != set(BGE_M3_WEIGHTS):
                tag += "".join(f"-{name}" for name in self.effective_weights)  # RRF weighs none: names only
            elif self.fusion != "rrf" and self.effective_weights != dict(BGE_M3_WEIGHTS):
                tag += "".join(f"-{name}{weight:g}" for name, weight in self.effective_weights.items())
            if self.normalization != "none":
                tag += "-" + self.normalization.replace("-", "")
        if self.mode in ("colbert", "hybrid") and self.candidates != CANDIDATES:
            tag += f"-k{self.candidates}"
        return tag

    def record(self) -> dict[str, Any]:
        """What the run record keeps."""
        record: dict[str, Any] = {"mode": self.mode}
        if self.mode in ("colbert", "hybrid"):
            record["candidates"] = self.candidates
        if self.mode == "hybrid":
            record.update(fusion=self.fusion, weights=self.effective_weights)
            if self.fusion == "weighted":
                record["normalization"] = self.normalization
            if self.fusion == "rrf":
                record["rrf_k"] = self.rrf_k
        return record


DENSE_RETRIEVAL = RetrievalSettings()


def candidate_union(runs: Sequence[TopK]) -> list[np.ndarray]:
    """Per query, every document any run retrieved, ascending (empty slots, index -1, left out)."""
    stacked = np.concatenate([run.indices for run in runs], axis=1)
    return [np.unique(row[row >= 0]) for row in stacked]


def run_scores(run: TopK, candidates: Sequence[np.ndarray], *, missing: float = 0.0) -> list[np.ndarray]:
    """The run's own score for each candidate, ``missing`` where the run did not retrieve it (ranx's wsum: 0)."""
    scores = []
    for row, docs in enumerate(candidates):
        retrieved = run.indices[row] >= 0
        position = {int(d): i for i, d in enumerate(run.indices[row][retrieved])}
        own = run.scores[row][retrieved].astype(np.float64)
        scores.append(np.array([own[position[int(d)]] if int(d) in position else missing for d in docs]))
    return scores


def normalized(scores: Sequence[np.ndarray], method: str) -> list[np.ndarray]:
    """Each query's scores normalised as ranx does: ``min-max`` to [0, 1], ``zmuv`` to mean 0 and deviation 1."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalisation is one of {', '.join(NORMALIZATIONS)}, not {method!r}")
    if method == "none":
        return [np.asarray(s, dtype=np.float64) for s in scores]
    result = []
    for row in scores:
        row = np.asarray(row, dtype=np.float64)
        if not len(row):
            result.append(row)
        elif method == "min-max":
            result.append((row - row.min()) / max(row.max() - row.min(), _MIN_DENOMINATOR))
        else:
            result.append((row - row.mean()) / max(row.std(), _MIN_DENOMINATOR))
    return result


def normalized_run(run: TopK, method: str) -> TopK:
    """Each query's retrieved scores normalised over that query's own results, as ranx's ``fuse(norm=...)``
    normalises a run before fusing (empty slots stay empty)."""
    scores = run.scores.astype(np.float64)
    for row in range(len(scores)):
        filled = run.indices[row] >= 0
        scores[row, filled] = normalized([scores[row, filled]], method)[0]
    return TopK(indices=run.indices, scores=scores)


def weighted_sum(
    scores_by_retriever: Mapping[str, Sequence[np.ndarray]],
    weights: Mapping[str, float],
    *,
    normalization: str = "none",
) -> list[np.ndarray]:
    """``Σ_r weights[r] · scores_by_retriever[r]``, per query, over the same candidates for every retriever.

    ``normalization`` applies to each retriever's scores of a query first (``none``: raw, as BGE-M3).
    """
    names = [name for name in weights if weights[name]]
    per_retriever = {name: normalized(scores_by_retriever[name], normalization) for name in names}
    n_queries = len(next(iter(per_retriever.values())))
    return [sum(weights[name] * per_retriever[name][q] for name in names) for q in range(n_queries)]


def reciprocal_ranks(run: TopK, candidates: Sequence[np.ndarray], *, k: int = RRF_K) -> list[np.ndarray]:
    """``1 / (k + rank)`` of each candidate in the run (rank 1 = the run's best), 0 where the run lacks it."""
    result = []
    for row, docs in enumerate(candidates):
        retrieved = run.indices[row][run.indices[row] >= 0]
        rank = {int(d): i + 1 for i, d in enumerate(retrieved)}
        result.append(np.array([1.0 / (k + rank[int(d)]) if int(d) in rank else 0.0 for d in docs]))
    return result


def reciprocal_rank_fusion(
    runs: Sequence[TopK], candidates: Sequence[np.ndarray], *, k: int = RRF_K
) -> list[np.ndarray]:
    """ranx's ``rrf``: the sum over runs of each candidate's reciprocal rank."""
    per_run = [reciprocal_ranks(run, candidates, k=k) for run in runs]
    return [sum(run[q] for run in per_run) for q in range(len(candidates))]


def padded_top_k(candidates: Sequence[np.ndarray], scores: Sequence[np.ndarray], k: int) -> TopK:
    """Per query, its best ``k`` candidates: best first, equal scores (as float32) by document index, and
    index -1 / score -inf in the slots of a query with fewer than ``k`` candidates."""
    indices = np.full((len(candidates), k), -1, dtype=np.int64)
    values = np.full((len(candidates), k), -np.inf, dtype=np.float32)
    for row, (docs, row_scores) in enumerate(zip(candidates, scores, strict=True)):
        ordered_scores, ordered_docs = best_first(
            np.asarray(row_scores, dtype=np.float32)[None, :], np.asarray(docs, dtype=np.int64)[None, :]
        )
        n = min(k, ordered_docs.shape[1])
        indices[row, :n], values[row, :n] = ordered_docs[0, :n], ordered_scores[0, :n]
    return TopK(indices=indices, scores=values)
