"""The task and model registries: metadata from mteb, overrides and user specs from YAML, strict errors."""

from __future__ import annotations

from pathlib import Path

import mteb
import pytest

from evalkit.errors import SpecError, UnknownModelError, UnknownTaskError
from evalkit.registry.models import load_model_registry, packaged_weights, resolve_model
from evalkit.registry.tasks import TaskRegistry, default_registry, parse_task_spec


def test_every_retrieval_and_sts_task_in_the_mirror_has_a_spec(mirror: Path) -> None:
    registry = default_registry()
    for folder in sorted(p for p in mirror.iterdir() if p.is_dir()):
        task_type = mteb.get_task(folder.name).metadata.type
        if task_type in ("Retrieval", "STS"):
            assert folder.name in registry.names, folder.name


def test_metadata_comes_from_mteb() -> None:
    spec = default_registry().get("SciFact")
    meta = mteb.get_task("SciFact").metadata
    assert spec.metadata_source == "mteb"
    assert (spec.type, spec.main_score, spec.eval_splits) == ("Retrieval", "ndcg_at_10", ("test",))
    assert (spec.dataset_path, spec.dataset_revision) == (meta.dataset["path"], meta.dataset["revision"])
    assert spec.remove_self_hits is False
    atec = default_registry().get("ATEC")
    assert atec.eval_splits == ("validation", "test") and atec.score_range == (0.0, 1.0)


def test_self_hit_removal_follows_mteb(tmp_path: Path) -> None:
    (tmp_path / "ArguAna.yaml").write_text("name: ArguAna\n")
    (tmp_path / "NFCorpus.yaml").write_text("name: NFCorpus\n")
    registry = TaskRegistry([tmp_path])
    assert registry.get("ArguAna").remove_self_hits is True
    assert registry.get("NFCorpus").remove_self_hits is False


def test_a_user_dataset_is_one_spec_file(tmp_path: Path) -> None:
    (tmp_path / "MyRetrieval.yaml").write_text(
        "name: MyRetrieval\ntype: Retrieval\nlanguages: [eng-Latn]\neval_splits: [dev]\ndata_dir: data/mine\n"
    )
    spec = TaskRegistry([tmp_path]).get("MyRetrieval")
    assert spec.metadata_source == "spec"
    assert spec.main_score == "ndcg_at_10"
    assert spec.data_dir == (tmp_path / "data" / "mine").resolve()


def test_spec_overrides_are_recorded(tmp_path: Path) -> None:
    (tmp_path / "STS12.yaml").write_text("name: STS12\nremove_self_hits: true\nmain_score: cosine_pearson\n")
    spec = TaskRegistry([tmp_path]).get("STS12")
    assert spec.main_score == "cosine_pearson"
    assert set(spec.overrides) == {"main_score", "remove_self_hits"}


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (
            "name: Bad\ntype: Retrieval\nlanguages: [eng]\neval_splits: [test]\ndata_dir: x\nsplits: [test]\n",
            6,
            "splits",
        ),
        ("name: Bad\ntype: Retrieval\nlanguages: [eng]\ndata_dir: x\n", 1, "eval_splits"),
        (
            "name: Bad\ntype: Retrieval\nlanguages: [eng]\neval_splits: [test]\ndata_dir: x\nversion: two\n",
            6,
            "version",
        ),
        ("name: Bad\ntype: Bogus\nlanguages: [eng]\neval_splits: [test]\ndata_dir: x\n", 2, "type"),
        ("name: Other\n", 1, "name"),
    ],
)
def test_bad_specs_name_file_line_and_field(tmp_path: Path, text: str, line: int, field: str) -> None:
    path = tmp_path / "Bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        parse_task_spec(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)
    assert f"{path}:{line}: field '{field}'" in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "Broken.yaml"
    path.write_text("name: Broken\ntype: [Retrieval\n")
    with pytest.raises(SpecError) as err:
        parse_task_spec(path)
    assert err.value.line is not None and str(path) in str(err.value)


def test_unknown_task_suggests_close_names() -> None:
    with pytest.raises(UnknownTaskError, match="SciFact"):
        default_registry().get("Scifact")


def test_select_by_type_and_language() -> None:
    registry = default_registry()
    retrieval = [s.name for s in registry.select(task_type="Retrieval")]
    assert "SciFact" in retrieval and "CQADupstackAndroidRetrieval" in retrieval and "T2Retrieval" in retrieval
    assert "STSBenchmark" not in retrieval
    chinese = registry.select(language="cmn")
    assert {"ATEC", "T2Retrieval", "TNews"} <= {s.name for s in chinese}
    assert all(any(lang.startswith("cmn") for lang in s.languages) for s in chinese)
    assert registry.select(language="eng-Latn", task_type="sts")


def test_model_registry_matches_mteb_model_meta() -> None:
    for name, spec in load_model_registry().items():
        try:
            meta = mteb.get_model_meta(name)
        except KeyError:  # a copy mteb does not list (an ONNX export, a packaged SPLADE): it must say where it lives
            assert spec.packaged_in, f"{name} is neither an mteb model nor a packaged copy"
            continue
        assert spec.revision == meta.revision, name
        assert spec.embedding_dim == meta.embed_dim, name


def test_packaged_model_resolves_offline() -> None:
    spec = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert spec.local_path == packaged_weights(spec)
    assert (spec.local_path / "model.safetensors").is_file()
    assert resolve_model("all-MiniLM-L6-v2").name == "sentence-transformers/all-MiniLM-L6-v2"


def test_local_folder_reads_sentence_transformers_settings() -> None:
    folder = resolve_model("sentence-transformers/all-MiniLM-L6-v2").local_path
    spec = resolve_model(str(folder))
    assert (spec.source, spec.pooling, spec.normalize, spec.max_length) == ("local", "mean", True, 256)


def test_unknown_model_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError) as err:
        resolve_model("no-such-org/no-such-model")
    assert "\n" not in str(err.value) and "no-such-org/no-such-model" in str(err.value)
    with pytest.raises(UnknownModelError):
        resolve_model("not a model")


def test_hub_id_resolves_through_the_hub_client_cache() -> None:
    """The real download path (huggingface_hub.snapshot_download), served from a local hub cache offline."""
    import os
    import shutil

    packaged = resolve_model("sentence-transformers/all-MiniLM-L6-v2").local_path
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = Path(os.environ["HF_HOME"]) / "hub" / "models--test-org--tiny-minilm"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(packaged, snapshot, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    spec = resolve_model("test-org/tiny-minilm")
    assert (spec.source, spec.revision, spec.local_path) == ("hub", commit, snapshot)
    assert (spec.pooling, spec.normalize, spec.max_length) == ("mean", True, 256)
    assert spec.results_folder_name == "test-org__tiny-minilm"


def test_models_yaml_keeps_only_what_mteb_lacks() -> None:
    """An mteb model's entry holds no field mteb's registry already gives (revision, prompts, languages, size)."""
    from evalkit.registry.models import _registry_layers

    for name, (override, mteb_fields) in _registry_layers().items():
        if mteb_fields:
            assert not {"revision", "prompts", "languages", "embedding_dim"} & set(override), name
            assert load_model_registry()[name].origins["revision"] == "mteb registry", name
        else:
            assert override.get("packaged_in") or override.get("adapter") in ("onnx", "splade"), name
