"""Model settings as run options: overrides land in their own results folder, and diff/compare read real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.registry.models import resolve_model
from evalkit.runner import apply_model_overrides

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def test_overrides_change_the_spec_and_tag_the_revision() -> None:
    spec = resolve_model(MODEL)
    same, tag = apply_model_overrides(spec, {"pooling": spec.pooling, "max_length": None})
    assert same == spec and tag == ""
    changed, tag = apply_model_overrides(spec, {"pooling": "cls", "max_length": 128, "normalize": False})
    assert (changed.pooling, changed.max_length, changed.normalize) == ("cls", 128, False)
    assert tag == "+pooling-cls+max_length-128+normalize-off"


def test_query_instruction_replaces_query_prompts_and_keeps_document_ones() -> None:
    spec = resolve_model(MODEL)
    from dataclasses import replace

    e5_like = replace(spec, prompts={"query": "query: ", "document": "passage: ", "SciFact": "x: "})
    changed, tag = apply_model_overrides(e5_like, {"query_instruction": "Represent this question: "})
    assert changed.prompts == {"query": "Represent this question: ", "document": "passage: ", "SciFact-document": "x: "}
    assert tag.startswith("+query_instruction-") and len(tag) == len("+query_instruction-") + 8


def test_bad_overrides_are_refused() -> None:
    spec = resolve_model(MODEL)
    with pytest.raises(EvalkitError, match="max_length"):
        apply_model_overrides(spec, {"max_length": 0})
    with pytest.raises(EvalkitError, match="unknown model setting"):
        apply_model_overrides(spec, {"dimensions": 128})


def test_real_ablation_runs_land_apart_and_diff_tells_them_apart(mirror: Path, tmp_path: Path, capsys) -> None:
    """STSBenchmark with the packaged model: as published, rerun, and with CLS pooling (a real degradation)."""
    common = ["run", "--model", MODEL, "--tasks", "STSBenchmark", "--data-dir", str(mirror), "--quiet"]
    base, rerun, cls = tmp_path / "base", tmp_path / "rerun", tmp_path / "cls"
    assert main([*common, "--output", str(base)]) == 0
    assert main([*common, "--output", str(rerun)]) == 0
    assert main([*common, "--output", str(cls), "--pooling", "cls"]) == 0
    (cls_revision,) = (cls / "sentence-transformers__all-MiniLM-L6-v2").iterdir()
    assert cls_revision.name.endswith("+pooling-cls")
    record = json.loads((cls_revision / "evalkit" / "STSBenchmark.run.json").read_text())
    assert record["model"]["pooling"] == "cls" and record["run_settings"]["model_overrides"]["pooling"] == "cls"
    capsys.readouterr()

    assert main(["diff", str(base), str(rerun)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("OK:")
    assert main(["diff", str(base), str(cls)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("REGRESSION") and "STSBenchmark" in last
