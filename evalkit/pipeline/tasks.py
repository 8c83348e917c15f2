"""One task through its evaluator: mteb's own protocol for the types mteb scores, evalkit's for the rest."""

from __future__ import annotations

import time

from evalkit.encoders.prompts import TaskPrompts
from evalkit.errors import EvalkitError
from evalkit.evaluators import OWN_EVALUATORS, check_split_type
from evalkit.evaluators.answer_retrieval import evaluate_answer_retrieval_task
from evalkit.evaluators.mteb_native import MtebEncoderAdapter, evaluate_with_mteb
from evalkit.evaluators.outcome import SplitOutcome, TaskOutcome
from evalkit.evaluators.retrieval import evaluate_retrieval
from evalkit.evaluators.sts import evaluate_sts
from evalkit.pipeline.models import RunModels
from evalkit.records import PairSplit, RetrievalSplit, TaskData
from evalkit.registry.tasks import MTEB_NATIVE_TYPES, TaskSpec, mteb_task_for
from evalkit.retrievers import LexicalRetriever


def evaluate_task(spec: TaskSpec, data: TaskData, models: RunModels, *, search_backend: str = "numpy") -> TaskOutcome:
    """Every split and subset of one task, scored."""
    started = time.perf_counter()
    if spec.type in MTEB_NATIVE_TYPES:
        adapter = MtebEncoderAdapter(
            models.encoder, models.core, prompts=models.model.prompts, name=models.model.name, revision=models.revision
        )
        outcomes = evaluate_with_mteb(
            mteb_task_for(spec),
            data.splits,
            adapter,
            eval_splits=spec.eval_splits,
            languages_of=spec.languages_of,
            main_score=spec.main_score,
            batch_size=models.core.batch_size or 32,
        )
    else:
        prompts = TaskPrompts.resolve(models.model.prompts, task_name=spec.name, task_type=spec.type)
        outcomes = _evaluate_own(spec, data, models, prompts, search_backend)
    return TaskOutcome(task_name=spec.name, splits=outcomes, evaluation_time_s=time.perf_counter() - started)


def _check_kind(spec: TaskSpec, models: RunModels) -> None:
    if isinstance(models.encoder, LexicalRetriever) and spec.type != "Retrieval":
        raise EvalkitError(f"{models.encoder.name} ranks documents; it cannot score task '{spec.name}' ({spec.type})")
    if models.rerank is not None and spec.type != "Retrieval":
        raise EvalkitError(f"--reranker applies to Retrieval tasks, not to '{spec.name}' ({spec.type})")
    if spec.type == "AnswerRetrieval" and models.retrieval.mode != "dense":
        raise EvalkitError(f"task '{spec.name}' ({spec.type}) is scored with dense retrieval only")


def _evaluate_own(
    spec: TaskSpec, data: TaskData, models: RunModels, prompts: TaskPrompts, search_backend: str
) -> list[SplitOutcome]:
    """Types evalkit scores itself, keeping per-query / per-pair values."""
    _check_kind(spec, models)
    encoder, core = models.encoder, models.core
    if spec.type == "AnswerRetrieval":  # all languages search one corpus: encoded once per task, not per subset
        return evaluate_answer_retrieval_task(
            data.splits,
            encoder,
            core,
            task_name=spec.name,
            eval_splits=spec.eval_splits,
            languages_of=spec.languages_of,
            main_score=spec.main_score,
            prompts=prompts,
            search_backend=search_backend,
        )
    outcomes: list[SplitOutcome] = []
    for hf_subset, splits in data.splits.items():
        corpus_vectors = {}  # splits of one subset that share a corpus encode it once
        for split_name in spec.eval_splits:
            split = splits[split_name]
            check_split_type(spec.type, split, spec.name)
            common = dict(
                split_name=split_name,
                hf_subset=hf_subset,
                languages=spec.languages_of(hf_subset),
                main_score=spec.main_score,
                prompts=prompts,
            )
            if isinstance(split, RetrievalSplit):
                outcome, corpus_vectors[id(split.corpus)] = evaluate_retrieval(
                    split,
                    encoder,
                    core,
                    remove_self_hits=spec.remove_self_hits,
                    corpus_vectors=corpus_vectors.get(id(split.corpus)),
                    search_backend=search_backend,
                    retrieval=models.retrieval,
                    rerank=models.rerank,
                    sparse_model=models.sparse_model,
                    distributed=models.distributed,
                    **common,
                )
            elif isinstance(split, PairSplit):
                outcome = evaluate_sts(split, encoder, core, score_range=spec.score_range, **common)
            else:
                outcome = OWN_EVALUATORS[spec.type](split, encoder, core, **common)
            outcomes.append(outcome)
    return outcomes
