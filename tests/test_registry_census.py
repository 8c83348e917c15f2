"""The census over mteb's whole model registry: every text model faithful to mteb's own code, or refused."""

from __future__ import annotations

import dataclasses

import mteb
import pytest

from evalkit.registry import census, mteb_models

WRAPPERS = {"SentenceTransformerEncoderWrapper", "InstructSentenceTransformerModel"}


@pytest.fixture(scope="module")
def outcomes() -> list[census.ModelOutcome]:
    return census.run_census()


def test_no_text_model_is_approximated(outcomes: list[census.ModelOutcome]) -> None:
    text_models = [m for m in mteb.get_model_metas() if list(m.modalities) == ["text"]]
    assert len(outcomes) == len(text_models) > 500
    approximated = [(o.name, o.mismatches[:2]) for o in outcomes if o.outcome == census.APPROXIMATED]
    assert approximated == []
    checks = census._total_checks(outcomes)
    assert checks["compared"] > 10_000 and checks["non-empty prompts"] > 5_000  # the comparison is not vacuous


def test_every_sentence_transformers_and_instruct_model_is_faithful_or_refused_with_a_reason(
    outcomes: list[census.ModelOutcome],
) -> None:
    loaders = {m.name: mteb_models.loader_name(m) or "" for m in mteb.get_model_metas()}
    wrapped = [o for o in outcomes if loaders[o.name].rsplit(".", 1)[-1] in WRAPPERS]
    assert len(wrapped) > 400
    for outcome in wrapped:
        assert outcome.outcome in (census.FAITHFUL, census.FAITHFUL_CONFIG, census.REFUSED), outcome.name
        if outcome.outcome == census.REFUSED:
            assert outcome.reason and "\n" not in outcome.reason, outcome.name
    faithful_instruct = [o for o in wrapped if o.outcome == census.FAITHFUL and "Instruct" in loaders[o.name]]
    assert len(faithful_instruct) > 30


def test_a_wrong_setting_is_caught() -> None:
    """The census compares real prompts: evalkit settings that differ from mteb's are reported as approximated."""
    tasks = census.sample_tasks()
    for name, change in (
        ("intfloat/e5-base-v2", {"prompts": {"query": "query: ", "document": "query: "}}),
        ("intfloat/e5-mistral-7b-instruct", {"instruction_to_documents": True}),
        ("Qwen/Qwen3-Embedding-0.6B", {"instruction_templates": {}, "instruction_template": "{instruction}"}),
        ("intfloat/e5-mistral-7b-instruct", {"similarity": "dot"}),
    ):
        meta = mteb.get_model_meta(name)
        fields = {**mteb_models.settings_from_meta(meta), **change}
        assert census.check_model(meta, tasks).outcome != census.APPROXIMATED, name
        outcome = census.check_model(meta, tasks, mteb_fields=fields)
        assert outcome.outcome == census.APPROXIMATED and outcome.mismatches, (name, change)


def test_the_report_counts_outcomes_and_reasons(outcomes: list[census.ModelOutcome]) -> None:
    tasks = census.sample_tasks()
    text = census.render_report(outcomes, tasks)
    faithful = sum(o.outcome == census.FAITHFUL for o in outcomes)
    assert f"| {census.FAITHFUL} | {faithful} |" in text
    assert "custom code needed" in text and "By mteb loader" in text and "Approximated" not in text
    assert {t.metadata.type for t in tasks} >= {"Retrieval", "STS", "Classification", "Clustering", "Reranking"}
    assert any(t.roles == ("document", "query") for t in tasks)  # TERRa: mteb encodes its inputs asymmetrically
    assert all(dataclasses.is_dataclass(o) for o in outcomes)
