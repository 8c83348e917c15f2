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


# The whole resolution (mteb's lookup, then sentence-transformers' own choice, or mteb's instruction path), against
# mteb's wrapper classes built without weights (evalkit.registry.census.mteb_wrapper).
ST_CASES = [
    ({"query": "q: ", "passage": "p: "}, {}),  # mteb passes no document prompt: encode_document takes "passage"
    ({"query": "q: ", "passage": "p: "}, {"prompts": {"document": "own d: "}}),  # mteb's prompts replace the model's
    ({}, {"prompts": {"query": "own q: ", "sym": "own s: "}, "default_prompt_name": "sym"}),  # ST's default prompt
    ({"query": "q: ", "Clustering": "c: "}, {"default_prompt_name": None}),
]
INSTRUCT_CASES = [
    {"instruction_template": "I: {instruction} Q: ", "apply_instruction_to_passages": True},
    {"instruction_template": "I: {instruction} Q: ", "prompts_dict": {"STS": "same meaning", "query": "find"}},
    {
        "instruction_template": "I: {instruction} Q: ",
        "prompts_dict": {"SciFact": "claims"},
        "apply_instruction_to_passages": False,
    },
    {"instruction_template": None, "prompts_dict": {"Classification": "classify"}},
]
TASKS = ["SciFact", "STSBenchmark", "Banking77Classification", "TwentyNewsgroupsClustering.v2", "SciDocsRR", "TERRa"]


def _both(meta: object, folder: dict, task: str, role: str) -> tuple[str | None, str | None]:
    """(evalkit's prompt, mteb's); evalkit's is ``None`` where it refuses: only the symmetric role of a task with a
    prompt per role, which mteb never encodes that way."""
    from evalkit.encoders.prompts import prompt_for
    from evalkit.errors import EvalkitError
    from evalkit.registry.census import mteb_prompt, mteb_wrapper
    from evalkit.registry.models import merge_settings
    from evalkit.registry.mteb_models import settings_from_meta

    metadata = mteb.get_task(task).metadata
    spec = merge_settings("m", mteb=settings_from_meta(meta), folder=folder)
    try:
        got = prompt_for(spec, task_name=task, task_type=metadata.type, role=role, task_prompt=metadata.prompt)
    except EvalkitError:
        assert role == "symmetric" and isinstance(metadata.prompt, dict)
        return None, None
    return got, mteb_prompt(mteb_wrapper(meta, folder), metadata, role)


@pytest.mark.parametrize(("model_prompts", "folder"), ST_CASES)
@pytest.mark.parametrize("task", TASKS)
def test_sentence_transformers_wrapper_prompts_equal_mtebs(model_prompts: dict, folder: dict, task: str) -> None:
    base = mteb.get_model_meta("intfloat/e5-base-v2")
    meta = base.model_copy(update={"loader_kwargs": {"model_prompts": model_prompts} if model_prompts else {}})
    for role in ("query", "document", "symmetric"):
        got, expected = _both(meta, folder, task, role)
        assert got == expected, (role, got, expected)


@pytest.mark.parametrize("kwargs", INSTRUCT_CASES)
@pytest.mark.parametrize("task", TASKS)
def test_instruct_wrapper_prompts_equal_mtebs(kwargs: dict, task: str) -> None:
    base = mteb.get_model_meta("intfloat/e5-mistral-7b-instruct")
    meta = base.model_copy(update={"loader_kwargs": kwargs})
    for folder in ({}, {"prompts": {"sym": "own: "}, "default_prompt_name": "sym"}):
        for role in ("query", "document", "symmetric"):
            got, expected = _both(meta, folder, task, role)
            assert got == expected, (role, folder, got, expected)


def test_for_model_refuses_only_the_role_it_cannot_resolve() -> None:
    from evalkit.encoders.prompts import TaskPrompts
    from evalkit.errors import EvalkitError
    from evalkit.registry.mteb_models import mteb_model_spec

    spec = mteb_model_spec("Qwen/Qwen3-Embedding-0.6B")
    metadata = mteb.get_task("SciFact").metadata  # one prompt per role: {"query": ...}
    prompts = TaskPrompts.for_model(spec, task_name="SciFact", task_type="Retrieval", task_prompt=metadata.prompt)
    assert prompts.for_role("query").startswith("Instruct: ") and prompts.for_role("document") == ""
    with pytest.raises(EvalkitError, match="per-role prompt"):
        prompts.for_role("symmetric")  # mteb never encodes SciFact without a role
