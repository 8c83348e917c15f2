"""Pair-classification evaluation: encode both sides of each pair, find mteb's best thresholds per similarity."""

from __future__ import annotations

import time

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.encoders.prompts import NO_PROMPTS, TaskPrompts
from evalkit.encoders.protocol import Encoder
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome, label_warnings, require_main_score
from evalkit.evaluators.pair_sides import SYMMETRIC, encode_pair_sides
from evalkit.kinds.pair_classification import PAIR_CLASSIFICATION_SCORES
from evalkit.metrics.pair_classification import pair_classification_scores, pair_similarities
from evalkit.records import PairLabelSplit

PER_PAIR_FUNCTIONS = ("cosine", "euclidean", "manhattan", "dot")
"""Similarities kept per pair (distances negated); ``similarity`` (the model's own function) is not kept."""


def evaluate_pair_classification(
    split: PairLabelSplit,
    encoder: Encoder,
    core: EmbeddingCore,
    *,
    split_name: str,
    hf_subset: str,
    languages: tuple[str, ...],
    main_score: str,
    prompts: TaskPrompts = NO_PROMPTS,
    similarity: str = "cosine",
    input_roles: tuple[str, str] = SYMMETRIC,
) -> SplitOutcome:
    """Scores of one split; the main score (``max_ap`` mostly, ``max_accuracy`` for Ocnli/Cmnli) is the task's;
    ``similarity`` is the model's own function (the ``similarity_*`` scores)."""
    require_main_score(main_score, PAIR_CLASSIFICATION_SCORES, "PairClassification")
    started = time.perf_counter()
    vectors1, vectors2 = encode_pair_sides(
        core,
        encoder,
        split.texts1,
        split.texts2,
        prompts=prompts,
        input_roles=input_roles,
        desc=f"{split_name} sentences",
    )
    encoded = time.perf_counter()
    similarities = pair_similarities(vectors1, vectors2, similarity=similarity)
    scores = pair_classification_scores(similarities, split.labels)
    per_pair = PerItemScores(
        item_ids=[str(i) for i in range(len(split))],
        values={
            "label": split.labels.astype(np.float64),
            **{name: similarities[name].astype(np.float64) for name in PER_PAIR_FUNCTIONS},
        },
    )
    return SplitOutcome(
        split=split_name,
        hf_subset=hf_subset,
        languages=languages,
        scores=scores,
        main_score=scores[main_score],
        per_item=per_pair,
        timings={"encode_s": encoded - started, "score_s": time.perf_counter() - encoded},
        warnings=label_warnings(split.labels),
    )
