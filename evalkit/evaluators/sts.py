"""STS evaluation: encode both sides of each pair, correlate the similarities with the gold scores."""

from __future__ import annotations

import time

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.encoders.prompts import NO_PROMPTS, TaskPrompts
from evalkit.encoders.protocol import Encoder
from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome, require_main_score
from evalkit.evaluators.pair_sides import SYMMETRIC, encode_pair_sides
from evalkit.kinds.sts import STS_SCORES
from evalkit.metrics.sts import pair_similarities, sts_scores
from evalkit.records import PairSplit


def evaluate_sts(
    split: PairSplit,
    encoder: Encoder,
    core: EmbeddingCore,
    *,
    split_name: str,
    hf_subset: str,
    languages: tuple[str, ...],
    main_score: str,
    score_range: tuple[float, float],
    prompts: TaskPrompts = NO_PROMPTS,
    similarity: str = "cosine",
    input_roles: tuple[str, str] = SYMMETRIC,
) -> SplitOutcome:
    """Scores of one split; ``similarity`` is the model's own function (the ``pearson``/``spearman`` columns)."""
    require_main_score(main_score, STS_SCORES, "STS")
    low, high = score_range
    if not low < high:  # reversed: every correlation's sign flips; empty: a division by zero
        raise EvalkitError(f"score range [{low:g}, {high:g}] is not [min, max] with min < max", field="score_range")
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
    gold = (split.scores - low) / (high - low)  # as mteb does; correlations do not change
    similarities = pair_similarities(vectors1, vectors2, similarity=similarity)
    scores = sts_scores(similarities, gold)
    per_pair = PerItemScores(
        item_ids=[str(i) for i in range(len(split))],
        values={
            "gold": split.scores.astype(np.float64),
            **{k: v.astype(np.float64) for k, v in similarities.items() if k != "similarity"},
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
    )
