"""Pair-classification metrics as mteb 2.26 reports them: best-threshold accuracy and F1, and average precision.

For each similarity function mteb picks the threshold that maximises accuracy (and, separately, F1) over the
pairs sorted by similarity, then reports ``{function}_{accuracy,f1,precision,recall,ap}`` and ``max_{metric}``
over the functions. Details that decide the numbers, each taken from ``AbsTaskPairClassification``:

* A threshold sits between two neighbouring *distinct* scores: it may not split tied scores, and it is never
  placed above every pair or below every pair (only the ``n - 1`` gaps count).
* Accuracy starts from 0 and F1 from 0 with a strict ``>``, so the first best gap wins; precision and recall
  are those of the F1-best gap, and a gap with no positive above it is skipped.
* AP is scikit-learn's ``average_precision_score`` on the float64 values of the float32 similarities.
* Euclidean and Manhattan are distances in mteb (lower = more similar). Here they are negated, which is exact
  in floating point and gives the same order, ties, thresholds and AP (mteb negates them for AP too).

The similarities are computed by the same functions, in the same precision, as mteb's evaluator, so that ties
(equal float32 values) are the same ties.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from sklearn.metrics.pairwise import (
    paired_cosine_distances,
    paired_euclidean_distances,
    paired_manhattan_distances,
)

from evalkit.search.similarity import pairwise_similarity

SIMILARITY_FUNCTIONS: tuple[str, ...] = ("similarity", "cosine", "manhattan", "euclidean", "dot")
"""mteb's order: ``similarity`` is the model's own function (cosine unless the model names another)."""

METRICS: tuple[str, ...] = ("accuracy", "f1", "precision", "recall", "ap")


def pair_similarities(
    vectors1: np.ndarray, vectors2: np.ndarray, *, similarity: str = "cosine"
) -> dict[str, np.ndarray]:
    """Per-pair similarity under each of mteb's functions, higher = more similar, as float32 like mteb's.

    ``dot`` is one ``np.dot`` per row and ``similarity`` is the model's own function as mteb computes it (for
    cosine, mteb's ``pairwise_cos_sim``: torch, normalise, then multiply and sum; for dot, euclidean or manhattan,
    :func:`evalkit.search.similarity.pairwise_similarity`), because a vectorised sum adds in another order and can
    move a value by one ulp, which can make or break a tie.
    """
    if vectors1.shape != vectors2.shape:
        raise ValueError(f"the two sides differ in shape: {vectors1.shape} and {vectors2.shape}")
    dot = np.array([np.dot(a, b) for a, b in zip(vectors1, vectors2, strict=True)], dtype=vectors1.dtype)
    if similarity == "cosine":
        left = torch.nn.functional.normalize(torch.as_tensor(vectors1, dtype=torch.float32), p=2, dim=1)
        right = torch.nn.functional.normalize(torch.as_tensor(vectors2, dtype=torch.float32), p=2, dim=1)
        own = (left * right).sum(dim=-1).numpy()
    else:
        own = pairwise_similarity(vectors1, vectors2, similarity).numpy()
    return {
        "similarity": own,
        "cosine": 1 - paired_cosine_distances(vectors1, vectors2),
        "manhattan": -paired_manhattan_distances(vectors1, vectors2),
        "euclidean": -paired_euclidean_distances(vectors1, vectors2),
        "dot": dot,
    }


def _sorted_with_gaps(similarities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels in descending-similarity order, and which of the ``n - 1`` gaps lie between distinct scores.

    The order among tied scores does not matter: a threshold never separates them, and the counts at the gaps
    between distinct scores are the same whatever the order inside a tie.
    """
    values = np.asarray(similarities, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    return labels[order], ranked[:-1] != ranked[1:]


def best_accuracy(similarities: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy at the best threshold: pairs above it are called positive, pairs below it negative."""
    ranked_labels, gaps = _sorted_with_gaps(similarities, _checked_labels(labels, similarities))
    positives_above = np.cumsum(ranked_labels == 1)[:-1]
    negatives_below = np.count_nonzero(ranked_labels == 0) - np.cumsum(ranked_labels == 0)[:-1]
    accuracy = (positives_above + negatives_below) / len(ranked_labels)
    return float(accuracy[gaps].max(initial=0.0))


def best_f1(similarities: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """``(f1, precision, recall)`` at the threshold with the best F1 (the first such gap, in mteb's order)."""
    ranked_labels, gaps = _sorted_with_gaps(similarities, _checked_labels(labels, similarities))
    correct = np.cumsum(ranked_labels == 1)[:-1]
    called = np.arange(1, len(ranked_labels), dtype=np.int64)
    usable = gaps & (correct > 0)
    if not usable.any():
        return 0.0, 0.0, 0.0
    correct, called = correct[usable], called[usable]
    precision = correct / called
    recall = correct / int(ranked_labels.sum())
    f1 = 2 * precision * recall / (precision + recall)  # mteb's formula, evaluated in the same order
    best = int(np.argmax(f1))  # the first maximum, as mteb's strict ">"
    return float(f1[best]), float(precision[best]), float(recall[best])


def average_precision(similarities: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's AP with the positive class 1, as mteb computes it."""
    checked = _checked_labels(labels, similarities)
    with warnings.catch_warnings():  # no positive pair: sklearn warns and gives 0.0, as mteb reports it
        warnings.simplefilter("ignore")
        return float(average_precision_score(checked, np.asarray(similarities, dtype=np.float64)))


def pair_classification_scores(similarities: Mapping[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """mteb's score dict: ``{function}_{metric}`` in mteb's function order, then ``max_{metric}``."""
    scores: dict[str, float] = {}
    for function in SIMILARITY_FUNCTIONS:
        values = similarities[function]
        f1, precision, recall = best_f1(values, labels)
        scores[f"{function}_accuracy"] = best_accuracy(values, labels)
        scores[f"{function}_f1"] = f1
        scores[f"{function}_precision"] = precision
        scores[f"{function}_recall"] = recall
        scores[f"{function}_ap"] = average_precision(values, labels)
    for metric in METRICS:
        scores[f"max_{metric}"] = max(scores[f"{function}_{metric}"] for function in SIMILARITY_FUNCTIONS)
    return scores


def _checked_labels(labels: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    checked = np.asarray(labels, dtype=np.int64)
    if checked.shape != (len(similarities),):
        raise ValueError(f"{checked.shape[0] if checked.ndim else 0} labels for {len(similarities)} similarities")
    if not np.isin(checked, (0, 1)).all():
        raise ValueError("pair labels must be 0 or 1")
    if len(checked) == 0:
        raise ValueError("no pairs to score")
    return checked
