"""Reranking: each query's given candidates (mteb 2's ``top_ranked``, or the v1 positive/negative lists) put in
order by the model and scored with retrieval's metrics averaged over queries (``evalkit.evaluators.reranking``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.kinds.kind import SplitArgs, TaskKind, each_split, mean_over_items
from evalkit.kinds.retrieval import RANKING_SCORES
from evalkit.loaders.hub import mteb_only, reranking_from_mteb
from evalkit.loaders.mirror import each_subset
from evalkit.loaders.reranking import load_reranking_splits
from evalkit.records import RerankingSplit, SourceFile, Split

if TYPE_CHECKING:
    from evalkit.evaluators.outcome import SplitOutcome
    from evalkit.pipeline.models import RunModels
    from evalkit.registry.tasks import TaskSpec

SUBQUERY_PREFIX = "max_over_subqueries_"
"""mteb's MindSmallReranking also scores queries merged by id prefix; its main score carries this prefix."""

RERANKING_SCORES = RANKING_SCORES | {SUBQUERY_PREFIX + name for name in RANKING_SCORES}


def read_reranking_subset(spec: TaskSpec, folder: Path) -> tuple[dict[str, Split], list[SourceFile]]:
    loaded, files = load_reranking_splits(folder, spec.eval_splits)
    return dict(loaded), files


def evaluate_reranking_split(split: Split, models: RunModels, args: SplitArgs) -> SplitOutcome:
    from evalkit.evaluators.reranking import evaluate_reranking

    assert isinstance(split, RerankingSplit)
    return evaluate_reranking(split, models.encoder, models.core, similarity=models.model.similarity, **args.common())


RERANKING = TaskKind(
    name="Reranking",
    split_type=RerankingSplit,
    default_main_score="map_at_1000",
    evaluate=each_split(evaluate_reranking_split),
    read_mirror=each_subset(read_reranking_subset),
    read_hub=mteb_only(reranking_from_mteb),
    score_names=RERANKING_SCORES,
    per_item_statistic=mean_over_items,
    description="order each query's given candidates; retrieval's metrics averaged over queries",
)
