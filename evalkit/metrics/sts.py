"""STS metrics: Pearson and Spearman of each similarity function against the gold scores, as mteb reports them.

The similarities are computed with the same scikit-learn functions mteb uses, so the numbers agree to the last digit.
The ``similarity`` column is the model's own function: cosine (as before) unless the model names dot, euclidean or
manhattan, then its ``similarity_pairwise`` as mteb computes it (:func:`evalkit.search.similarity.pairwise_similarity`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics.pairwise import (
    paired_cosine_distances,
    paired_euclidean_distances,
    paired_manhattan_distances,
)

from evalkit.search.similarity import pairwise_similarity


def pair_similarities(
    vectors1: np.ndarray, vectors2: np.ndarray, *, similarity: str = "cosine"
) -> dict[str, np.ndarray]:
    """Per-pair similarity under each function mteb reports (distances negated, so higher = more similar), and
    under the model's own ``similarity`` (the ``similarity`` column)."""
    cosine = 1 - paired_cosine_distances(vectors1, vectors2)
    own = cosine if similarity == "cosine" else pairwise_similarity(vectors1, vectors2, similarity).numpy()
    return {
        "cosine": cosine,
        "manhattan": -paired_manhattan_distances(vectors1, vectors2),
        "euclidean": -paired_euclidean_distances(vectors1, vectors2),
        "dot": np.einsum("ij,ij->i", vectors1.astype(np.float64), vectors2.astype(np.float64)),
        "similarity": own,
    }


def sts_scores(similarities: dict[str, np.ndarray], gold: np.ndarray) -> dict[str, float]:
    """MTEB's STS score names: ``cosine_spearman``, ``manhattan_pearson``, ..., plus ``pearson``/``spearman``.

    A correlation that is undefined (fewer than 2 pairs, constant gold scores or constant similarities) is NaN,
    never a scipy exception: the caller refuses a non-finite main score with the task and split named.
    """
    scores: dict[str, float] = {}
    for function, values in similarities.items():
        prefix = "" if function == "similarity" else f"{function}_"
        scores[f"{prefix}pearson"] = _correlation(pearsonr, gold, values)
        scores[f"{prefix}spearman"] = _correlation(spearmanr, gold, values)
    return scores


def _correlation(statistic: Callable[..., Any], gold: np.ndarray, values: np.ndarray) -> float:
    if len(gold) < 2 or np.all(gold == gold[0]) or np.all(values == values[0]):
        return math.nan
    with warnings.catch_warnings():  # near-constant input: scipy warns and may still give a number
        warnings.simplefilter("ignore")
        return float(statistic(gold, values)[0])
