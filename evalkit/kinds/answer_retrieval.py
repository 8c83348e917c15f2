"""AnswerRetrieval (evalkit's own type, MKQA): questions in many languages with answer strings, one shared passage
corpus, no judgements; a passage is relevant when it contains an answer. Scored per task, so the shared corpus is
encoded once for every language (``evalkit.evaluators.answer_retrieval``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.kinds.kind import TaskKind, mean_over_items
from evalkit.loaders.mkqa import load_answer_retrieval_splits
from evalkit.records import AnswerRetrievalSplit, SourceFile, Split

if TYPE_CHECKING:
    from evalkit.evaluators.outcome import SplitOutcome
    from evalkit.pipeline.models import RunModels
    from evalkit.records import TaskData
    from evalkit.registry.tasks import TaskSpec

ANSWER_SCORES = frozenset(f"recall_at_{k}" for k in (1, 5, 10, 20, 100))
"""Share of questions with an answer-holding passage in the top k; the BGE-M3 paper reports @20 and @100."""


def read_answer_retrieval(spec: TaskSpec, task_dir: Path) -> tuple[dict[str, dict[str, Split]], list[SourceFile]]:
    """One corpus beside every subset's questions, not a folder per subset."""
    splits, files = load_answer_retrieval_splits(task_dir, spec.hf_subsets, spec.eval_splits)
    return dict(splits), files


def evaluate_answer_retrieval(
    kind: TaskKind, spec: TaskSpec, data: TaskData, models: RunModels, *, search_backend: str
) -> list[SplitOutcome]:
    """Every language at once, so the shared corpus is encoded once for all of them."""
    from evalkit.encoders.prompts import TaskPrompts
    from evalkit.evaluators.answer_retrieval import evaluate_answer_retrieval_task

    prompts = TaskPrompts.for_model(models.model, task_name=spec.name, task_type=spec.type, task_prompt=spec.prompt)
    return evaluate_answer_retrieval_task(
        data.splits,
        models,
        task_name=spec.name,
        eval_splits=spec.eval_splits,
        languages_of=spec.languages_of,
        main_score=spec.main_score,
        prompts=prompts,
        search_backend=search_backend,
    )


ANSWER_RETRIEVAL = TaskKind(
    name="AnswerRetrieval",
    split_type=AnswerRetrievalSplit,
    default_main_score="recall_at_100",
    evaluate=evaluate_answer_retrieval,
    read_mirror=read_answer_retrieval,
    read_hub=None,
    score_names=ANSWER_SCORES,
    per_item_statistic=mean_over_items,
    retrieval="dense",
    description="find a passage holding an answer; recall over questions (MKQA)",
)
