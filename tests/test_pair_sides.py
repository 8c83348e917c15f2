"""Pair tasks encode each side as mteb does: together with no role, or each side with its own role and prompt
where mteb's task names one (TERRa.V2: documents, then queries)."""

from __future__ import annotations

import numpy as np

from evalkit.encoders.prompts import TaskPrompts
from evalkit.evaluators.pair_sides import encode_pair_sides
from evalkit.registry.models import ModelSpec
from evalkit.registry.tasks import default_registry


class RecordingCore:
    """Stands in for the embedding core: one vector per text, and every call's role and prompt remembered."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def encode(self, encoder: object, texts: list[str], role: str, *, prompt: str, desc: str) -> np.ndarray:
        self.calls.append((role, prompt, len(texts)))
        return np.arange(len(texts), dtype=np.float32)[:, None]


def test_mteb_roles_of_pair_tasks_reach_the_spec() -> None:
    registry = default_registry()
    assert registry.get("TERRa.V2").input_roles == ("document", "query")  # mteb's input1/2_prompt_type
    assert registry.get("STSBenchmark").input_roles == ("symmetric", "symmetric")


def test_symmetric_sides_are_one_call_and_asymmetric_ones_get_their_role_prompts() -> None:
    model = ModelSpec(name="m", prompts={"query": "query: ", "document": "passage: "})
    prompts = TaskPrompts.for_model(model, task_name="TERRa.V2", task_type="PairClassification")
    core = RecordingCore()
    left, right = encode_pair_sides(core, None, ["a", "b"], ["c", "d"], prompts=prompts, desc="test")
    assert core.calls == [("symmetric", "", 4)] and left.shape == right.shape == (2, 1)
    core = RecordingCore()
    encode_pair_sides(
        core, None, ["a", "b"], ["c", "d"], prompts=prompts, input_roles=("document", "query"), desc="test"
    )
    assert core.calls == [("document", "passage: ", 2), ("query", "query: ", 2)]
