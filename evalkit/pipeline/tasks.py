"""One task through its kind's evaluator (:mod:`evalkit.kinds`): mteb's own protocol for the types mteb scores,
evalkit's for the rest."""

from __future__ import annotations

import time

from evalkit.evaluators.outcome import TaskOutcome
from evalkit.kinds import get_kind
from evalkit.pipeline.models import RunModels
from evalkit.records import TaskData
from evalkit.registry.tasks import TaskSpec


def evaluate_task(spec: TaskSpec, data: TaskData, models: RunModels, *, search_backend: str = "numpy") -> TaskOutcome:
    """Every split and subset of one task, scored."""
    started = time.perf_counter()
    kind = get_kind(spec.type)
    models.check_task(spec.name, spec.type)  # done for every planned task when the models were built; cheap
    outcomes = kind.evaluate(kind, spec, data, models, search_backend=search_backend)
    return TaskOutcome(task_name=spec.name, splits=outcomes, evaluation_time_s=time.perf_counter() - started)
