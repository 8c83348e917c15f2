"""mteb's model registry as the source of a model's settings: what each loader passes, refusals, precedence."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mteb
import pytest
from mteb.types import PromptType

from evalkit.encoders.prompts import TaskPrompts, prompt_for
from evalkit.errors import UnknownModelError
from evalkit.registry import mteb_models
from evalkit.registry.census import mteb_prompt, mteb_wrapper
from evalkit.registry.models import merge_settings, model_settings, packaged_weights, resolve_model
from evalkit.registry.mteb_models import mteb_model_spec, refusal_reason, resolve_template, settings_from_meta

QWEN3 = "Qwen/Qwen3-Embedding-0.6B"
E5_MISTRAL = "intfloat/e5-mistral-7b-instruct"
GTE_QWEN2 = "Alibaba-NLP/gte-Qwen2-1.5B-instruct"


def _first(predicate: object) -> str:
    return next(m.name for m in mteb.get_model_metas() if predicate(m))  # type: ignore[operator]


def test_qwen3_embedding_gets_mtebs_instruction_template() -> None:
    spec = mteb_model_spec(QWEN3)
    meta = mteb.get_model_meta(QWEN3)
    assert spec is not None and spec.revision == meta.revision
    assert (spec.prompt_style, spec.instruction_to_documents, spec.similarity) == ("instruct", False, "cosine")
    # q3e_instruct_loader passes qwen3_models.instruction_template, which is code: resolved per role by calling it
    assert spec.instruction_templates["query"] == "Instruct: {instruction}\nQuery:"
    assert spec.instruction_templates["query:empty"] == ""
    assert spec.origins["instruction_template"] == "mteb registry"
    task = mteb.get_task("SciFact").metadata
    prompts = TaskPrompts.for_model(spec, task_name="SciFact", task_type="Retrieval", task_prompt=task.prompt)
    wrapper = mteb_wrapper(meta, {})
    assert prompts.query == mteb_prompt(wrapper, task, "query") and prompts.query.startswith("Instruct: ")
    assert prompts.document == mteb_prompt(wrapper, task, "document") == ""


def test_e5_mistral_template_and_tokenizer_arguments() -> None:
    spec = mteb_model_spec(E5_MISTRAL)
    assert spec is not None
    assert spec.instruction_template == "Instruct: {instruction}\nQuery: " and not spec.instruction_templates
    assert spec.tokenizer_kwargs == {"add_bos_token": True, "add_eos_token": True}
    assert spec.instruction_to_documents is False
    for name in ("SciFact", "STSBenchmark", "Banking77Classification"):
        task = mteb.get_task(name).metadata
        role = "query" if task.type == "Retrieval" else "symmetric"
        expected = mteb_prompt(mteb_wrapper(mteb.get_model_meta(E5_MISTRAL), {}), task, role)
        got = prompt_for(spec, task_name=name, task_type=task.type, role=role, task_prompt=task.prompt)
        assert got == expected and got.startswith("Instruct: "), name


def test_callable_template_resolves_to_what_it_returns() -> None:
    from mteb.models.model_implementations import gte_models

    text, per_role = resolve_template(gte_models.instruction_template)
    assert text is None
    for role, prompt_type in (("query", PromptType.query), ("document", PromptType.document), ("symmetric", None)):
        assert per_role[role].format(instruction="Find X") == gte_models.instruction_template("Find X", prompt_type)
        assert per_role[f"{role}:empty"] == gte_models.instruction_template("", prompt_type)
    with pytest.raises(ValueError, match="not the instruction inside fixed text"):
        resolve_template(lambda instruction, prompt_type: instruction.upper())
    assert mteb_model_spec(GTE_QWEN2).instruction_templates == per_role  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("predicate", "words"),
    [
        (lambda m: m.name == "nomic-ai/nomic-embed-text-v1.5", "trust_remote_code"),
        (lambda m: "cross-encoder" in m.model_type and m.modalities == ["text"], "reranker"),
        (lambda m: "sparse" in m.model_type and m.modalities == ["text"], "sparse"),
        (lambda m: "late-interaction" in m.model_type and m.modalities == ["text"], "multi-vector"),
        (lambda m: m.name == "openai/text-embedding-3-large", "API model"),
        (lambda m: "image" in m.modalities, "another modality"),
    ],
)
def test_refusals_say_why_in_one_line(predicate: object, words: str) -> None:
    name = _first(predicate)
    reason = refusal_reason(mteb.get_model_meta(name))
    assert reason is not None and words in reason and "\n" not in reason
    with pytest.raises(UnknownModelError) as err:
        resolve_model(name)
    assert err.value.exit_code == 2 and words in str(err.value) and "\n" not in str(err.value)


def test_precedence_override_then_mteb_then_folder() -> None:
    mteb_fields = {"prompts": {"query": "mteb q: "}, "revision": "r-mteb", "origins": {"prompts": "mteb registry"}}
    folder = {"prompts": {"query": "own q: ", "passage": "own p: "}, "pooling": "cls", "max_length": 128}
    spec = merge_settings("m", override={"max_length": 64}, mteb=mteb_fields, folder=folder)
    assert spec.prompts == {"query": "mteb q: "}  # mteb's model_prompts replace the model's own, as mteb does
    assert (spec.pooling, spec.max_length, spec.revision) == ("cls", 64, "r-mteb")
    assert {k: spec.origins[k] for k in ("prompts", "pooling", "max_length", "revision", "similarity")} == {
        "prompts": "mteb registry",
        "pooling": "model config",
        "max_length": "evalkit override",
        "revision": "mteb registry",
        "similarity": "default",
    }
    instruct = settings_from_meta(mteb.get_model_meta(E5_MISTRAL))
    assert merge_settings("m", mteb=instruct, folder={"include_prompt": False}).include_prompt is False  # the folder's
    include_false = _first(lambda m: (m.loader_kwargs or {}).get("include_prompt") is False)
    assert mteb_model_spec(include_false).include_prompt is False  # type: ignore[union-attr]
    own = merge_settings("m", folder=folder)
    assert own.origins["prompts"] == "model config"
    assert prompt_for(own, task_name="SciFact", task_type="Retrieval", role="document") == ""  # ST's "document"
    assert prompt_for(spec, task_name="SciFact", task_type="Retrieval", role="document") == ""


def test_mteb_model_resolves_at_mtebs_revision_through_the_hub_cache() -> None:
    """`--model intfloat/e5-base-v2` gets mteb's prompts and downloads mteb's revision (served from the cache)."""
    name = "intfloat/e5-base-v2"
    meta = mteb.get_model_meta(name)
    repo = Path(os.environ["HF_HOME"]) / "hub" / f"models--{name.replace('/', '--')}"
    snapshot = repo / "snapshots" / str(meta.revision)
    minilm = resolve_model("sentence-transformers/all-MiniLM-L6-v2").local_path
    assert minilm is not None and minilm == packaged_weights(model_settings("all-MiniLM-L6-v2"))
    shutil.copytree(minilm, snapshot, dirs_exist_ok=True)
    try:
        shown = model_settings(name)  # no fetch: reads the cached folder
        spec = resolve_model(name)
    finally:
        shutil.rmtree(repo)
    assert (spec.revision, spec.local_path, spec.source) == (meta.revision, snapshot, "hub")
    assert spec.prompts == meta.loader_kwargs["model_prompts"] == shown.prompts
    assert spec.origins["prompts"] == "mteb registry" and spec.origins["pooling"] == "model config"
    assert spec.mteb_meta is not None and spec.mteb_meta["name"] == name


def test_settings_without_weights_and_unknown_names() -> None:
    spec = model_settings("intfloat/e5-large-v2")
    assert spec.local_path is None and spec.prompts["query"] == "query: "
    assert spec.origins["revision"] == "mteb registry" and spec.origins["pooling"] == "default"  # until fetched
    with pytest.raises(UnknownModelError, match="not downloaded"):
        model_settings("no-such-org/no-such-model")


def test_mteb_meta_is_json_as_mteb_writes_it() -> None:
    meta = mteb.get_model_meta(GTE_QWEN2)
    first, second = settings_from_meta(meta)["mteb_meta"], settings_from_meta(meta)["mteb_meta"]
    assert first == second == json.loads(json.dumps(first))
    assert first["loader_kwargs"]["instruction_template"].endswith("gte_models.instruction_template")
    assert first["name"] == GTE_QWEN2 and first["loader"] == "InstructSentenceTransformerModel"


def test_registry_models_keep_working() -> None:
    registry = {name: model_settings(name) for name in ("BAAI/bge-small-en-v1.5", "mteb/baseline-bm25s")}
    bge = registry["BAAI/bge-small-en-v1.5"]
    assert bge.prompts == mteb.get_model_meta("BAAI/bge-small-en-v1.5").loader_kwargs["model_prompts"]
    assert (bge.pooling, bge.origins["pooling"]) == ("cls", "evalkit override")
    assert registry["mteb/baseline-bm25s"].adapter == "bm25"
    assert mteb_models.find_meta("no-such-org/no-such-model") is None


def test_query_instruction_override_is_refused_for_an_instruct_model() -> None:
    """--query-instruction rewrites named prompts; an instruct model's per-task instructions would be untouched,
    so the ablation would silently not be one: refused, naming the option."""
    from evalkit.errors import EvalkitError
    from evalkit.options.sections import ModelOverrides

    spec = mteb_model_spec("Qwen/Qwen3-Embedding-0.6B")
    assert spec is not None and spec.prompt_style == "instruct"
    with pytest.raises(EvalkitError) as refused:
        ModelOverrides(query_instruction="Find the answer: ").apply(spec)
    assert refused.value.field == "query_instruction"
    plain = model_settings("intfloat/multilingual-e5-small")
    changed, tag = ModelOverrides(query_instruction="Find the answer: ").apply(plain)
    assert changed.prompts["query"] == "Find the answer: " and tag.startswith("+query_instruction-")
