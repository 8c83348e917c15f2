"""Prompts: resolved with mteb's precedence, and the registry's prompts are the ones mteb's model loaders use."""

from __future__ import annotations

import itertools

import mteb
import pytest
from mteb.models.abs_encoder import get_prompt
from mteb.types import PromptType

from evalkit.encoders.prompts import TaskPrompts, resolve_prompt
from evalkit.registry.models import load_model_registry

PROMPTS = {
    "query": "Q: ",
    "document": "D: ",
    "Retrieval-query": "RQ: ",
    "Clustering": "CL: ",
    "SciFact": "SF: ",
    "NFCorpus-document": "NFD: ",
}


@pytest.mark.parametrize(
    ("task", "role"),
    list(
        itertools.product(
            ["SciFact", "NFCorpus", "ArguAna", "STSBenchmark", "TwentyNewsgroupsClustering.v2", "SciDocsRR"],
            ["query", "document", "symmetric"],
        )
    ),
)
def test_resolution_equals_mteb(task: str, role: str) -> None:
    metadata = mteb.get_task(task).metadata
    mteb_type = None if role == "symmetric" else PromptType(role)
    expected = get_prompt(PROMPTS, metadata, mteb_type) or ""
    assert resolve_prompt(PROMPTS, task_name=task, task_type=metadata.type, role=role) == expected


def test_bare_query_prompt_reaches_only_asymmetric_roles() -> None:
    prompts = TaskPrompts.resolve({"query": "Represent this: "}, task_name="STSBenchmark", task_type="STS")
    assert (prompts.query, prompts.symmetric) == ("Represent this: ", "")
    assert prompts.for_role("symmetric") == "" and prompts.for_role("query") == "Represent this: "


def test_registry_prompts_are_mtebs() -> None:
    for name, spec in load_model_registry().items():
        try:
            meta = mteb.get_model_meta(name)
        except KeyError:  # packaged copies mteb does not list (see test_registry)
            continue
        mteb_prompts = (meta.loader_kwargs or {}).get("model_prompts") or {}
        generic = {key: text for key, text in mteb_prompts.items() if key in ("query", "document")}
        assert {k: v for k, v in spec.prompts.items() if k in ("query", "document")} == generic, name
