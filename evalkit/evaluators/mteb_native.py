"""Task types scored by mteb's own evaluators, fed by evalkit's embedding core.

Classification (logistic regression on embeddings, with mteb's undersampling and seeds), Clustering (mteb's
k-means protocol), BitextMining, Summarization and MultilabelClassification are protocols, not metrics: writing
them again would only add a second, subtly different copy. So evalkit hands mteb an encoder that satisfies mteb's
``EncoderProtocol`` and does its encoding through evalkit's core (dedup, batching, and later caching and bf16).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.encoders.prompts import resolve_prompt
from evalkit.encoders.protocol import Encoder
from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome
from evalkit.records import NativeSplit
from evalkit.registry.tasks import mteb_task_for
from evalkit.search.similarity import check_similarity, pairwise_similarity, similarity_matrix

if TYPE_CHECKING:
    from evalkit.pipeline.models import RunModels
    from evalkit.records import TaskData
    from evalkit.registry.tasks import TaskSpec


@dataclass(frozen=True)
class AdapterModelMeta:
    """The two fields of mteb's ModelMeta its evaluators read."""

    name: str
    revision: str | None
    similarity_fn_name: str = "cosine"


class MtebEncoderAdapter:
    """evalkit's encoder and core behind mteb's ``EncoderProtocol``.

    Prompts are resolved from the model's prompts with mteb's own precedence (``evalkit.encoders.prompts``), so
    the text that reaches the model is the one mteb's sentence-transformers wrapper would send. ``similarity`` is
    the model's function (its ``similarity_fn_name``), which mteb's evaluators call through ``similarity`` (bitext
    mining, summarization) and ``similarity_pairwise``; cosine is mteb's own ``cos_sim`` as before.
    """

    def __init__(
        self,
        encoder: Encoder,
        core: EmbeddingCore,
        *,
        prompts: Mapping[str, str],
        name: str,
        revision: str | None,
        similarity: str = "cosine",
    ) -> None:
        self.encoder = encoder
        self.core = core
        self.prompts = prompts
        self._meta = AdapterModelMeta(name=name, revision=revision, similarity_fn_name=check_similarity(similarity))

    @property
    def mteb_model_meta(self) -> AdapterModelMeta:
        return self._meta

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts: list[str] = []
        for batch in inputs:
            if "text" not in batch:
                raise EvalkitError(f"task '{task_metadata.name}' gives non-text inputs; evalkit encodes text only")
            texts.extend(batch["text"])
        role = prompt_type.value if prompt_type is not None else "symmetric"
        prompt = resolve_prompt(self.prompts, task_name=task_metadata.name, task_type=task_metadata.type, role=role)
        return self.core.encode(self.encoder, texts, role, prompt=prompt, desc=f"{hf_split}/{hf_subset} texts")

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        if self._meta.similarity_fn_name != "cosine":
            return similarity_matrix(embeddings1, embeddings2, self._meta.similarity_fn_name)
        from mteb.similarity_functions import cos_sim

        return cos_sim(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        if self._meta.similarity_fn_name != "cosine":
            return pairwise_similarity(embeddings1, embeddings2, self._meta.similarity_fn_name)
        from mteb.similarity_functions import pairwise_cos_sim

        return pairwise_cos_sim(embeddings1, embeddings2)


def _plain(value: Any) -> Any:
    """mteb score dicts may hold numpy scalars and nested dicts; the results format wants plain JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def evaluate_with_mteb(
    mteb_task: Any,
    splits_by_subset: Mapping[str, Mapping[str, NativeSplit]],
    adapter: MtebEncoderAdapter,
    *,
    eval_splits: tuple[str, ...],
    languages_of: Any,
    main_score: str,
    batch_size: int,
) -> list[SplitOutcome]:
    """Score every (split, subset) with mteb's evaluator for the task's type."""
    from datasets import DatasetDict

    mteb_task.dataset = {
        subset: DatasetDict({name: split.dataset for name, split in splits.items()})
        for subset, splits in splits_by_subset.items()
    }
    mteb_task.data_loaded = True
    outcomes = []
    for split_name in eval_splits:
        started = time.perf_counter()
        by_subset = mteb_task.evaluate(
            adapter, split=split_name, subsets_to_run=list(splits_by_subset), encode_kwargs={"batch_size": batch_size}
        )
        elapsed = time.perf_counter() - started
        for subset, scores in by_subset.items():
            plain = _plain(dict(scores))
            if main_score not in plain:
                raise EvalkitError(
                    f"mteb's evaluator for '{mteb_task.metadata.name}' gave no '{main_score}' "
                    f"(it gave: {', '.join(sorted(plain))})"
                )
            plain.pop("main_score", None)
            outcomes.append(
                SplitOutcome(
                    split=split_name,
                    hf_subset=subset,
                    languages=languages_of(subset),
                    scores=plain,
                    main_score=float(plain[main_score]),
                    per_item=PerItemScores(item_ids=[], values={}),  # mteb's protocols keep no per-item scores
                    timings={"evaluate_s": elapsed},
                )
            )
    return outcomes


def evaluate_native_task(spec: TaskSpec, data: TaskData, models: RunModels) -> list[SplitOutcome]:
    """Every split and subset of a task with mteb's evaluator for its type, the run's model behind the adapter."""
    adapter = MtebEncoderAdapter(
        models.encoder,
        models.core,
        prompts=models.model.prompts,
        name=models.model.name,
        revision=models.revision,
        similarity=models.model.similarity,
    )
    return evaluate_with_mteb(
        mteb_task_for(spec),
        data.splits,  # type: ignore[arg-type]
        adapter,
        eval_splits=spec.eval_splits,
        languages_of=spec.languages_of,
        main_score=spec.main_score,
        batch_size=models.core.batch_size or 32,
    )
