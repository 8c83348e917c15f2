"""PairClassification: sentence pairs labelled 0/1 (``<split>.jsonl``); scored with mteb's best thresholds and
average precision per similarity (``evalkit.evaluators.pair_classification``). AP is no mean over pairs, so
``diff`` compares the scores alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit.kinds.kind import SplitArgs, TaskKind, each_split
from evalkit.kinds.sts import PAIR_FUNCTIONS
from evalkit.loaders.hub import mteb_only, pair_labels_from_mteb
from evalkit.loaders.mirror import each_subset, one_file_per_split
from evalkit.loaders.pair_labels import load_pair_label_split
from evalkit.records import PairLabelSplit, Split

if TYPE_CHECKING:
    from evalkit.evaluators.outcome import SplitOutcome
    from evalkit.pipeline.models import RunModels

PAIR_CLASSIFICATION_SCORES = frozenset(
    f"{prefix}_{metric}"
    for prefix in (*PAIR_FUNCTIONS, "max")
    for metric in ("accuracy", "f1", "precision", "recall", "ap")
)


def evaluate_pair_classification_split(split: Split, models: RunModels, args: SplitArgs) -> SplitOutcome:
    from evalkit.evaluators.pair_classification import evaluate_pair_classification

    assert isinstance(split, PairLabelSplit)
    return evaluate_pair_classification(
        split,
        models.encoder,
        models.core,
        similarity=models.model.similarity,
        input_roles=args.spec.input_roles,
        **args.common(),
    )


PAIR_CLASSIFICATION = TaskKind(
    name="PairClassification",
    split_type=PairLabelSplit,
    default_main_score="max_ap",
    evaluate=each_split(evaluate_pair_classification_split),
    read_mirror=each_subset(one_file_per_split(load_pair_label_split)),
    read_hub=mteb_only(pair_labels_from_mteb),
    score_names=PAIR_CLASSIFICATION_SCORES,
    description="separate duplicate pairs from the rest by a similarity threshold",
)
