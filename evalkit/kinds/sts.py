"""STS: sentence pairs with a gold similarity each (``<split>.jsonl``); scored by correlating the model's
similarities with the gold scores over pairs (``evalkit.evaluators.sts``), so ``diff`` tests the correlation itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evalkit.kinds.kind import PerItemStatistic, SplitArgs, TaskKind, each_split
from evalkit.loaders.hub import load_generic_pairs, mteb_or_generic, pairs_from_mteb
from evalkit.loaders.mirror import each_subset, one_file_per_split
from evalkit.loaders.pairs import load_pair_split
from evalkit.records import PairSplit, Split

if TYPE_CHECKING:
    from evalkit.evaluators.outcome import SplitOutcome
    from evalkit.pipeline.models import RunModels

PAIR_FUNCTIONS = ("similarity", "cosine", "manhattan", "euclidean", "dot")
"""The similarities scored: the model's own (``similarity``: its ``similarity_fn_name``, cosine by default) and
mteb's four."""

STS_SCORES = frozenset(
    f"{'' if function == 'similarity' else function + '_'}{statistic}"
    for function in PAIR_FUNCTIONS
    for statistic in ("pearson", "spearman")
)


def correlation_over_pairs(main_score: str) -> PerItemStatistic | None:
    """``cosine_spearman`` → Spearman of the per-pair ``cosine`` column with ``gold``; the model's own
    ``similarity`` is not kept per pair, so its scores have no per-item test."""
    function, _, statistic = main_score.rpartition("_")
    if function not in PAIR_FUNCTIONS[1:] or statistic not in ("spearman", "pearson"):
        return None
    return PerItemStatistic(column=function, statistic=statistic)


def score_range_from_mteb(mteb_task: Any) -> dict[str, Any]:
    """mteb's gold-score bounds, which STS scores are normalised by."""
    return {"score_range": (float(mteb_task.min_score), float(mteb_task.max_score))}


def evaluate_sts_split(split: Split, models: RunModels, args: SplitArgs) -> SplitOutcome:
    from evalkit.evaluators.sts import evaluate_sts

    assert isinstance(split, PairSplit)
    return evaluate_sts(
        split,
        models.encoder,
        models.core,
        score_range=args.spec.score_range,
        similarity=models.model.similarity,
        input_roles=args.spec.input_roles,
        **args.common(),
    )


STS = TaskKind(
    name="STS",
    split_type=PairSplit,
    default_main_score="cosine_spearman",
    evaluate=each_split(evaluate_sts_split),
    read_mirror=each_subset(one_file_per_split(load_pair_split)),
    read_hub=mteb_or_generic(pairs_from_mteb, load_generic_pairs),
    score_names=STS_SCORES,
    per_item_statistic=correlation_over_pairs,
    spec_fields_from_mteb=score_range_from_mteb,
    description="correlate pair similarities with gold scores",
)
