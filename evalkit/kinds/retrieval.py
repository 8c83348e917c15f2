"""Retrieval: a corpus, queries and graded judgements (BEIR files, or MIRACL's topics and TREC qrels); scored by
searching the corpus for each query and averaging trec_eval's metrics over queries (``evalkit.evaluators.retrieval``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.kinds.kind import SplitArgs, TaskKind, each_split, mean_over_items
from evalkit.loaders.beir import load_beir_splits
from evalkit.loaders.hub import load_generic_retrieval, mteb_or_generic, retrieval_from_mteb
from evalkit.loaders.miracl import has_topics_layout, load_miracl_splits
from evalkit.loaders.mirror import each_subset
from evalkit.metrics.retrieval import K_VALUES, METRIC_PREFIXES
from evalkit.records import RetrievalSplit, SourceFile, Split

if TYPE_CHECKING:
    from evalkit.evaluators.outcome import SplitOutcome
    from evalkit.pipeline.models import RunModels
    from evalkit.registry.tasks import TaskSpec

RANKING_SCORES = frozenset({f"{metric}_at_{k}" for metric in METRIC_PREFIXES for k in K_VALUES} | {"accuracy"})
"""What the retrieval evaluator reports: trec_eval's metrics at mteb's cutoffs, and ``accuracy`` (recall@1)."""


def read_retrieval_subset(spec: TaskSpec, folder: Path) -> tuple[dict[str, Split], list[SourceFile]]:
    """BEIR files, or MIRACL's topics and TREC qrels where the folder holds those."""
    load = load_miracl_splits if has_topics_layout(folder, spec.eval_splits) else load_beir_splits
    loaded, files = load(folder, spec.eval_splits)
    return dict(loaded), files


def evaluate_retrieval_split(split: Split, models: RunModels, args: SplitArgs) -> SplitOutcome:
    """One split, searched with the run's retriever (which keeps an indexed corpus for the splits that share it)."""
    from evalkit.evaluators.retrieval import evaluate_retrieval

    assert isinstance(split, RetrievalSplit)
    return evaluate_retrieval(
        split,
        models,
        remove_self_hits=args.spec.remove_self_hits,
        search_backend=args.search_backend,
        **args.common(),
    )


RETRIEVAL = TaskKind(
    name="Retrieval",
    split_type=RetrievalSplit,
    default_main_score="ndcg_at_10",
    evaluate=each_split(evaluate_retrieval_split),
    read_mirror=each_subset(read_retrieval_subset),
    read_hub=mteb_or_generic(retrieval_from_mteb, load_generic_retrieval),
    score_names=RANKING_SCORES,
    per_item_statistic=mean_over_items,
    retrieval="any",
    description="rank a corpus for each query; trec_eval's metrics averaged over queries",
)
