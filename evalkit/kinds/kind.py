"""What a task type is to evalkit: one record saying how its data is read, how it is scored, and how it is tested.

A :class:`TaskKind` gathers what used to be a string compared in every stage (``spec.type == "STS"`` in the
loaders, the pipeline, the registry and the evaluators): the split record its loaders give, the mirror and hub
readers, the evaluator, the default and the valid main scores, and the statistic ``evalkit diff`` tests it with.
Each stage asks :func:`evalkit.kinds.get_kind` and uses the answer, so a new type is one module and one line.

Nothing heavy is imported here: the registry reads kinds while parsing specs, which must not load torch or mteb.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from evalkit.errors import EvalkitError

if TYPE_CHECKING:
    from evalkit.encoders.prompts import TaskPrompts
    from evalkit.evaluators.outcome import SplitOutcome
    from evalkit.pipeline.models import RunModels
    from evalkit.records import SourceFile, Split, TaskData
    from evalkit.registry.tasks import TaskSpec

MirrorReader = Callable[["TaskSpec", Path], "tuple[dict[str, dict[str, Split]], list[SourceFile]]"]
"""Every eval split of every subset from a task's mirror folder (``splits[subset][split]``) and the files read."""

HubReader = Callable[["TaskSpec", str], "dict[str, dict[str, Split]]"]
"""Every eval split of every subset from the hub; the ``str`` is ``hub:<path>@<revision>``, for errors."""


@dataclass(frozen=True)
class SplitArgs:
    """What every split evaluator is told besides the split and the models: where the split sits and how to score.

    ``spec`` carries the task's own settings (``remove_self_hits``, ``score_range``) for the kinds that read them.
    """

    spec: TaskSpec
    split_name: str
    hf_subset: str
    languages: tuple[str, ...]
    main_score: str
    prompts: TaskPrompts
    search_backend: str = "numpy"

    def common(self) -> dict[str, Any]:
        """The keyword arguments every evalkit evaluator function takes."""
        return {
            "split_name": self.split_name,
            "hf_subset": self.hf_subset,
            "languages": self.languages,
            "main_score": self.main_score,
            "prompts": self.prompts,
        }


SplitEvaluator = Callable[["Split", "RunModels", SplitArgs], "SplitOutcome"]
"""Scores one split of a task with the run's models."""


class TaskEvaluator(Protocol):
    """Scores every split and subset of a task (kinds that share work across splits, or hand the task to mteb)."""

    def __call__(
        self, kind: TaskKind, spec: TaskSpec, data: TaskData, models: RunModels, *, search_backend: str
    ) -> list[SplitOutcome]: ...


@dataclass(frozen=True)
class PerItemStatistic:
    """How ``evalkit diff`` tests a main score on per-item rows: which column, and the statistic over items.

    ``statistic`` is one of :data:`evalkit.stats.paired.STATISTICS`: ``mean`` (a mean over queries: nDCG@10, MAP)
    or ``spearman``/``pearson`` (a correlation of the column with the ``gold`` column over pairs).
    """

    column: str
    statistic: str


def mean_over_items(main_score: str) -> PerItemStatistic | None:
    """Retrieval-like kinds: the main score is the mean of its per-query column."""
    return PerItemStatistic(column=main_score, statistic="mean")


def no_per_item_test(main_score: str) -> PerItemStatistic | None:
    """Kinds whose main score is not a statistic of kept per-item values (AP over pairs, mteb's protocols)."""
    return None


def no_spec_fields(mteb_task: Any) -> dict[str, Any]:
    """Kinds whose specs take nothing more from mteb's task object than every task's metadata."""
    return {}


RETRIEVAL_USES = ("any", "dense", "none")
"""What of the run's retriever a kind's evaluator may use (:attr:`TaskKind.retrieval`)."""


@dataclass(frozen=True)
class TaskKind:
    """One task type: its records, readers, evaluator, scores and per-item test, declared in one module.

    ``score_names`` is ``None`` where mteb's own evaluator names the scores (they cannot be listed before it runs).
    ``read_mirror``/``read_hub`` are ``None`` where the data cannot come from there. ``retrieval`` says what of the
    run's retriever the evaluator uses, so the run's models are checked against it before any encoding
    (:func:`evalkit.search.build.check_task`): ``"any"`` (every first stage, BM25, a reranker), ``"dense"`` (dense
    search only) or ``"none"`` (texts are encoded, nothing is searched). ``spec_fields_from_mteb`` reads the type's own
    :class:`~evalkit.registry.tasks.TaskSpec` fields off mteb's task object (STS: its score range).
    """

    name: str
    split_type: type
    default_main_score: str
    evaluate: TaskEvaluator
    read_mirror: MirrorReader | None = None
    read_hub: HubReader | None = None
    score_names: frozenset[str] | None = None
    per_item_statistic: Callable[[str], PerItemStatistic | None] = no_per_item_test
    retrieval: str = "none"
    spec_fields_from_mteb: Callable[[Any], dict[str, Any]] = no_spec_fields
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.retrieval not in RETRIEVAL_USES:
            raise EvalkitError(f"task kind '{self.name}': retrieval must be one of {', '.join(RETRIEVAL_USES)}")

    def check_split(self, split: Split, task_name: str) -> None:
        """A reader must hand the evaluator the record this kind expects."""
        if not isinstance(split, self.split_type):
            raise EvalkitError(
                f"task '{task_name}': expected {self.split_type.__name__} data, got {type(split).__name__}"
            )


def split_jobs(
    kind: TaskKind, spec: TaskSpec, data: TaskData, models: RunModels, *, search_backend: str
) -> Iterator[tuple[Split, SplitArgs]]:
    """Each (split, arguments) of a task in evaluation order: subsets as loaded, splits as the spec lists them."""
    from evalkit.encoders.prompts import TaskPrompts

    prompts = TaskPrompts.for_model(models.model, task_name=spec.name, task_type=spec.type, task_prompt=spec.prompt)
    for hf_subset, splits in data.splits.items():
        for split_name in spec.eval_splits:
            split = splits[split_name]
            kind.check_split(split, spec.name)
            yield (
                split,
                SplitArgs(
                    spec=spec,
                    split_name=split_name,
                    hf_subset=hf_subset,
                    languages=spec.languages_of(hf_subset),
                    main_score=spec.main_score,
                    prompts=prompts,
                    search_backend=search_backend,
                ),
            )


def each_split(evaluate_split: SplitEvaluator) -> TaskEvaluator:
    """A task evaluator that scores each split on its own with ``evaluate_split``: what most kinds need."""

    def evaluate(
        kind: TaskKind, spec: TaskSpec, data: TaskData, models: RunModels, *, search_backend: str
    ) -> list[SplitOutcome]:
        jobs = split_jobs(kind, spec, data, models, search_backend=search_backend)
        return [evaluate_split(split, models, args) for split, args in jobs]

    return evaluate
