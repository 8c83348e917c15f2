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
    """STSBenchmark with the packaged model: as published, rerun, and with CLS pooling (a real degradation) stored
    as mteb stores an experiment: mteb's reader sees one revision with the default scores, the experiment on
    request; evalkit's readers find both and name the experiment."""
    import mteb
    from mteb.cache import ResultCache

    from evalkit.results.api import load_results

    common = ["run", "--model", MODEL, "--tasks", "STSBenchmark", "--data-dir", str(mirror), "--quiet"]
    cache, rerun = tmp_path / "cache", tmp_path / "rerun"
    base = cache / "results"
    assert main([*common, "--output", str(base)]) == 0
    assert main([*common, "--output", str(rerun)]) == 0
    assert main([*common, "--output", str(base), "--pooling", "cls"]) == 0
    (revision,) = (base / "sentence-transformers__all-MiniLM-L6-v2").iterdir()  # one revision: the model's own
    (experiment,) = (revision / "experiments").iterdir()
    assert experiment.name == "pooling_cls"
    meta = json.loads((experiment / "model_meta.json").read_text())
    assert meta["revision"] == revision.name and meta["experiment_kwargs"] == {"pooling": "cls"}
    record = json.loads((experiment / "evalkit" / "STSBenchmark.run.json").read_text())
    assert record["model"]["pooling"] == "cls" and record["run_settings"]["model_overrides"]["pooling"] == "cls"

    published = load_results(revision).main_scores()["STSBenchmark"]  # the revision's own run, not its experiment
    ablated = load_results(experiment).main_scores()["STSBenchmark"]
    assert published is not None and ablated is not None and ablated < published
    default = ResultCache(cache).load_results(models=[MODEL], include_remote=False)
    assert [(m.model_revision, m.experiment_name) for m in default.model_results] == [(revision.name, None)]
    assert default.model_results[0].task_results[0].get_score() == pytest.approx(published, abs=1e-12)
    everything = ResultCache(cache).load_results(models=[MODEL], include_remote=False, load_experiments="match_name")
    by_experiment = {m.experiment_name: m.task_results[0].get_score() for m in everything.model_results}
    assert by_experiment == {None: pytest.approx(published, abs=1e-12), "pooling_cls": pytest.approx(ablated)}
    mteb.models.model_meta.ModelMeta.model_validate_json_resolved((experiment / "model_meta.json").read_text())

    runs = {run.revision: run.experiment for run in load_results(base).runs}
    assert runs == {revision.name: None, f"{revision.name}+pooling_cls": "pooling_cls"}
    capsys.readouterr()
    assert main(["diff", str(base), str(rerun)]) == 0  # the root leads to the model's own run
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("OK:")
    assert main(["diff", str(revision), str(experiment)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("REGRESSION") and "STSBenchmark" in last
    assert main(["leaderboard", str(base), "--each-revision"]) == 0
    assert "+pooling_cls" in capsys.readouterr().out
