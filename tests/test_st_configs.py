"""sentence-transformers configurations in full: every pooling mode, a prompt left out of the pooling, Dense,
Normalize, truncation and the similarity function, read from the folder and computed by evalkit's own core.

Each folder is built here from the packaged all-MiniLM-L6-v2 weights (linked, not copied) with the module configs
a hub model would carry; evalkit's vectors, through ``resolve_model`` → ``build_encoder`` → ``EmbeddingCore``
(never sentence-transformers' ``encode``), must equal ``SentenceTransformer(folder).encode`` within 1e-5 on a few
hundred real texts of varied length, on the torch runtime and on the default one (ONNX Runtime for fp32 on a CPU).
What evalkit would not reproduce is refused with one line naming the file and field.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from evalkit.core import EmbeddingCore
from evalkit.encoders.adapters import Encoding, build_encoder
from evalkit.errors import EvalkitError, SpecError
from evalkit.registry.models import ModelSpec, load_model_registry, packaged_weights, resolve_model
from evalkit.registry.st_folder import settings_from_folder

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
QUERY_PROMPT = "Represent this sentence for searching relevant passages: "
TANH_DENSE = {
    "in_features": 384,
    "out_features": 256,
    "bias": True,
    "activation_function": "torch.nn.modules.activation.Tanh",
}


def source() -> Path:
    folder = packaged_weights(load_model_registry()[MINILM])
    if folder is None:
        pytest.skip("the packaged all-MiniLM-L6-v2 weights are not installed")
    return folder


def module(idx: int, path: str, kind: str) -> dict[str, Any]:
    return {"idx": idx, "name": str(idx), "path": path, "type": f"sentence_transformers.models.{kind}"}


def dense_weights(folder: Path, seed: int = 0, config: dict[str, Any] | None = None) -> None:
    """A Dense module with random weights (384 → 256), saved as sentence-transformers saves one."""
    config = config or TANH_DENSE
    generator = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    weights = {"linear.weight": torch.randn(config["out_features"], config["in_features"], generator=generator) * 0.05}
    if config.get("bias", True):
        weights["linear.bias"] = torch.randn(config["out_features"], generator=generator) * 0.01
    save_file(weights, str(folder / "model.safetensors"))


def st_folder(
    root: Path,
    name: str,
    pooling: dict[str, Any],
    *,
    dense: bool = False,
    normalize: bool = True,
    st_config: dict[str, Any] | None = None,
) -> Path:
    """A sentence-transformers folder over the packaged weights: Transformer, Pooling [, Dense] [, Normalize]."""
    folder = root / name
    folder.mkdir(parents=True)
    for path in source().iterdir():
        if path.is_file() and path.name not in ("modules.json", "config_sentence_transformers.json"):
            os.symlink(path, folder / path.name)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 384, **pooling}))
    modules = [TRANSFORMER, module(1, "1_Pooling", "Pooling")]
    if dense:
        dense_weights(folder / "2_Dense")
        modules.append(module(2, "2_Dense", "Dense"))
    if normalize:
        modules.append(module(len(modules), f"{len(modules)}_Normalize", "Normalize"))
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "config_sentence_transformers.json").write_text(json.dumps(st_config or {}))
    return folder


CONFIGS: dict[str, dict[str, Any]] = {
    "cls": {"pooling": {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}},
    "max": {"pooling": {"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False}, "normalize": False},
    "mean_sqrt_len_tokens": {"pooling": {"pooling_mode": "mean_sqrt_len_tokens"}},
    "weightedmean": {"pooling": {"pooling_mode_weightedmean_tokens": True, "pooling_mode_mean_tokens": False}},
    "lasttoken": {"pooling": {"pooling_mode": "lasttoken"}},
    "cls+mean+max": {"pooling": {"pooling_mode": ["cls", "mean", "max"]}},
    "dense-dot": {
        "pooling": {"pooling_mode_mean_tokens": True},
        "dense": True,
        "normalize": False,
        "st_config": {"similarity_fn_name": "dot"},
    },
    "prompt-left-out": {
        "pooling": {"pooling_mode": "weightedmean", "include_prompt": False},
        "st_config": {"prompts": {"query": QUERY_PROMPT, "document": ""}},
    },
    "default-prompt-cls": {
        "pooling": {"pooling_mode": "cls", "include_prompt": False},
        "st_config": {"prompts": {"query": QUERY_PROMPT}, "default_prompt_name": "query"},
    },
}


@cache
def real_texts() -> tuple[str, ...]:
    """200 texts from the mirror: STS sentences (short), SciFact abstracts cut to lengths up to ~130 tokens, and
    two whole abstracts (cut at the model's 256 tokens)."""
    from conftest import MIRROR

    if not MIRROR.is_dir():
        pytest.skip(f"the shared benchmark data is not at {MIRROR}")
    with open(MIRROR / "STSBenchmark" / "test.jsonl", encoding="utf-8") as handle:
        sentences = [json.loads(line)["sentence1"] for _, line in zip(range(128), handle, strict=False)]
    with open(MIRROR / "SciFact" / "corpus.jsonl", encoding="utf-8") as handle:
        abstracts = [json.loads(line)["text"] for _, line in zip(range(72), handle, strict=False)]
    cut = [text[: 30 + 12 * (number % 50)] for number, text in enumerate(abstracts[:70])]
    return (*sentences, *cut, *abstracts[70:])


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("st-folders")
    return {name: st_folder(root, name, **config) for name, config in CONFIGS.items()}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-graphs")


@cache
def st_vectors(folder: Path, prompt_name: str | None, truncate_dim: int | None = None) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", truncate_dim=truncate_dim)
    return model.encode(list(real_texts()), prompt_name=prompt_name, batch_size=32, convert_to_numpy=True)


def evalkit_vectors(
    spec: ModelSpec, runtime: str, artifacts: Path, prompt: str = "", count: int | None = None
) -> tuple[np.ndarray, str]:
    encoder = build_encoder(spec, Encoding(runtime=runtime), artifact_dir=artifacts)
    core = EmbeddingCore(show_progress=False, token_budget=4096)
    texts = list(real_texts()[:count])
    return core.encode(encoder, texts, "query", prompt=prompt), encoder.runtime  # type: ignore[union-attr]


@pytest.mark.parametrize("runtime", ["torch", "onnx"])  # auto is one of the two, by a probe (test_runtime_probe.py)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_vectors_equal_sentence_transformers(
    folders: dict[str, Path], artifacts: Path, name: str, runtime: str
) -> None:
    spec = resolve_model(str(folders[name]))
    prompt = QUERY_PROMPT if name == "prompt-left-out" else ""  # as mteb resolves the model's query prompt
    ours, used = evalkit_vectors(spec, runtime, artifacts, prompt)
    theirs = st_vectors(folders[name], "query" if prompt else None)
    assert used == runtime
    assert ours.shape == theirs.shape
    assert float(np.abs(ours - theirs).max()) < 1e-5


def test_the_prompt_left_out_is_really_left_out(folders: dict[str, Path], artifacts: Path) -> None:
    """The prompt changes the vector (the model attends to it) but is not pooled: neither the vector with the
    prompt pooled nor the one without any prompt is what comes out."""
    spec = resolve_model(str(folders["prompt-left-out"]))
    left_out, _ = evalkit_vectors(spec, "torch", artifacts, QUERY_PROMPT, count=60)
    pooled, _ = evalkit_vectors(replace(spec, include_prompt=True), "torch", artifacts, QUERY_PROMPT, count=60)
    no_prompt, _ = evalkit_vectors(spec, "torch", artifacts, count=60)
    assert float(np.abs(left_out - pooled).max()) > 1e-2
    assert float(np.abs(left_out - no_prompt).max()) > 1e-2


@pytest.mark.parametrize("runtime", ["torch", "auto"])
def test_truncate_dim_equals_sentence_transformers(folders: dict[str, Path], artifacts: Path, runtime: str) -> None:
    """The first dimensions of the normalised vector, not normalised again (as sentence-transformers truncates)."""
    spec = replace(resolve_model(str(folders["dense-dot"])), truncate_dim=64)
    ours, _ = evalkit_vectors(spec, runtime, artifacts)
    theirs = st_vectors(folders["dense-dot"], None, truncate_dim=64)
    assert ours.shape == theirs.shape == (len(real_texts()), 64)
    assert float(np.abs(ours - theirs).max()) < 1e-5
    assert spec.settings()["truncate_dim"] == 64


# -- what the folder says ---------------------------------------------------------------------------------------


def test_every_setting_that_changes_a_vector_or_a_score_is_read(folders: dict[str, Path]) -> None:
    settings = {name: settings_from_folder(folder) for name, folder in folders.items()}
    assert settings["cls"]["pooling"] == "cls" and settings["cls"]["normalize"] is True
    assert settings["max"]["pooling"] == "max" and settings["max"]["normalize"] is False
    assert settings["cls+mean+max"]["pooling"] == "cls+mean+max"
    assert settings["dense-dot"]["dense_modules"] == ("2_Dense",)
    assert settings["dense-dot"]["similarity"] == "dot"
    assert settings["prompt-left-out"]["include_prompt"] is False
    assert settings["prompt-left-out"]["prompts"] == {"query": QUERY_PROMPT, "document": ""}  # "" kept, as ST
    assert settings["default-prompt-cls"]["default_prompt_name"] == "query"
    assert settings["cls"]["max_length"] == 256
    assert "similarity" not in settings["cls"] and "include_prompt" not in settings["cls"]  # defaults stay unsaid
    spec = resolve_model(str(folders["dense-dot"]))
    assert spec.settings()["dense_modules"] == ["2_Dense"] and spec.settings()["similarity"] == "dot"


def test_legacy_flags_concatenate_in_sentence_transformers_order(tmp_path: Path) -> None:
    flags = {"pooling_mode_lasttoken": True, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True}
    assert settings_from_folder(st_folder(tmp_path, "a", flags))["pooling"] == "cls+mean+lasttoken"
    assert settings_from_folder(st_folder(tmp_path, "b", {}))["pooling"] == "mean"  # no flag set: mean


def test_the_tokenizers_limit_is_the_max_length_when_the_folder_gives_none(tmp_path: Path) -> None:
    folder = st_folder(tmp_path, "m", {"pooling_mode": "mean"})
    (folder / "sentence_bert_config.json").unlink()
    (folder / "sentence_bert_config.json").write_text('{"do_lower_case": false}')
    assert settings_from_folder(folder)["max_length"] == 512  # tokenizer 512, max_position_embeddings 512


def test_left_padding_is_read_from_the_tokenizer_config(tmp_path: Path) -> None:
    folder = st_folder(tmp_path, "left", {"pooling_mode": "lasttoken"})
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    assert settings_from_folder(folder)["padding_side"] == "left"
    with pytest.raises(EvalkitError, match="left"):
        build_encoder(resolve_model(str(folder)), Encoding(runtime="onnx"))  # the export is checked right-padded


def _write(folder: Path, name: str, content: Any) -> None:
    path = folder / name
    if path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


REFUSED = [
    ("modules.json", [TRANSFORMER, module(1, "1_Pooling", "Pooling"), module(2, "2_LayerNorm", "LayerNorm")],
     "modules.json", "LayerNorm"),
    ("modules.json", [TRANSFORMER, module(1, "1_Pooling", "Pooling"), module(2, "2_Normalize", "Normalize"),
                      module(3, "3_Dense", "Dense")], "modules.json", "Dense"),
    ("modules.json", [TRANSFORMER, module(1, "1_WLP", "WeightedLayerPooling"), module(2, "2_Pooling", "Pooling")],
     "modules.json", "Pooling"),
    ("modules.json", [{**TRANSFORMER, "path": "0_Transformer"}, module(1, "1_Pooling", "Pooling")],
     "modules.json", "0_Transformer"),
    ("2_Dense/config.json", {**TANH_DENSE, "activation_function": "mypackage.Swish"}, "2_Dense/config.json",
     "activation_function"),
    ("2_Dense/config.json", {**TANH_DENSE, "activation_function": "torch.nn.modules.activation.Softmax"},
     "2_Dense/config.json", "activation_function"),
    ("2_Dense/config.json", {**TANH_DENSE, "dropout": 0.1}, "2_Dense/config.json", "dropout"),
    ("2_Dense/config.json", {**TANH_DENSE, "module_input_name": "token_embeddings"}, "2_Dense/config.json",
     "module_input_name"),
    ("1_Pooling/config.json", {"pooling_mode": "median"}, "1_Pooling/config.json", "pooling_mode"),
    ("1_Pooling/config.json", {"pooling_mode_lasttoken": "yes"}, "1_Pooling/config.json", "pooling_mode_lasttoken"),
    ("config_sentence_transformers.json", {"similarity_fn_name": "maxsim"}, "config_sentence_transformers.json",
     "similarity_fn_name"),
    ("config_sentence_transformers.json", {"prompts": {"query": "q: "}, "default_prompt_name": "passage"},
     "config_sentence_transformers.json", "default_prompt_name"),
    ("config_sentence_transformers.json", {"model_type": "SparseEncoder"}, "config_sentence_transformers.json",
     "model_type"),
    ("sentence_bert_config.json", {"max_seq_length": 128, "tokenizer_args": {"padding_side": "left"}},
     "sentence_bert_config.json", "tokenizer_args"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "content", "named", "field"), REFUSED)
def test_what_evalkit_would_not_reproduce_is_refused_naming_file_and_field(
    tmp_path: Path, file: str, content: Any, named: str, field: str
) -> None:
    folder = st_folder(tmp_path, "m", {"pooling_mode": "mean"}, dense=True)
    _write(folder, file, content)
    with pytest.raises(SpecError) as caught:
        resolve_model(str(folder))
    message = str(caught.value)
    assert message.startswith(str(folder / named)) and field in message and "\n" not in message


def test_a_pickled_dense_weight_is_refused_and_never_read(tmp_path: Path) -> None:
    folder = st_folder(tmp_path, "m", {"pooling_mode": "mean"}, dense=True)
    (folder / "2_Dense" / "model.safetensors").unlink()
    (folder / "2_Dense" / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(SpecError, match="pickled weights are not loaded") as caught:
        resolve_model(str(folder))
    assert str(caught.value).startswith(str(folder / "2_Dense" / "pytorch_model.bin"))


def test_dense_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    folder = st_folder(tmp_path, "m", {"pooling_mode": "mean"}, dense=True)
    (folder / "2_Dense" / "model.safetensors").unlink()
    save_file({"linear.weight": torch.zeros(128, 384), "linear.bias": torch.zeros(128)},
              str(folder / "2_Dense" / "model.safetensors"))  # fmt: skip
    with pytest.raises(EvalkitError, match=r"do not fit its config\.json"):
        build_encoder(resolve_model(str(folder)), Encoding(runtime="torch"))


def test_remote_code_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = st_folder(tmp_path, "m", {"pooling_mode": "mean"})
    config = json.loads((folder / "config.json").read_text())
    _write(folder, "config.json", {**config, "auto_map": {"AutoModel": "modeling_custom.CustomModel"}})
    with pytest.raises(SpecError, match="trust_remote_code") as caught:
        resolve_model(str(folder))
    assert str(caught.value).startswith(str(folder / "config.json")) and "\n" not in str(caught.value)


# -- scores equal mteb's (mteb with the SentenceTransformer, evalkit through its own core) ---------------------


def mteb_scores(folder: Path, task: Any) -> dict[str, Any]:
    import warnings

    import mteb
    from sentence_transformers import SentenceTransformer

    task.data_loaded = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mteb.evaluate(
            SentenceTransformer(str(folder), device="cpu"),
            [task],
            cache=None,
            encode_kwargs={"batch_size": 32},
            show_progress_bar=False,
        )
    return result.task_results[0].scores["test"][0]


def evalkit_scores(folder: Path, task: str, data_dir: Path, tmp_path: Path) -> dict[str, float]:
    import evalkit

    results = evalkit.evaluate(
        str(folder), [task], data_dir=data_dir, output=tmp_path / "out", cache_dir=tmp_path / "c", show_progress=False
    )
    frame = results.to_dataframe()
    frame = frame[frame["split"] == "test"]
    return dict(zip(frame["metric"], frame["value"], strict=True))


def reduced_scifact(mirror: Path, target: Path, others: int = 700) -> Path:
    """SciFact with all 300 test queries, their relevant documents and the first ``others`` other documents."""
    source = mirror / "SciFact"
    qrels = (source / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    relevant = {line.split("\t")[1] for line in qrels[1:]}
    query_ids = {line.split("\t")[0] for line in qrels[1:]}
    kept, extra = [], 0
    for line in (source / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        doc_id = json.loads(line)["_id"]
        if doc_id in relevant or extra < others:
            extra += doc_id not in relevant
            kept.append(line)
    queries = [line for line in (source / "queries.jsonl").read_text(encoding="utf-8").splitlines()
               if json.loads(line)["_id"] in query_ids]  # fmt: skip
    folder = target / "SciFact"
    (folder / "qrels").mkdir(parents=True)
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    (folder / "corpus.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n", encoding="utf-8")
    return target


def scifact_task(data_dir: Path) -> Any:
    import mteb
    from datasets import Dataset
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    folder = data_dir / "SciFact"
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    relevant: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        relevant.setdefault(query_id, {})[doc_id] = int(score)
    task = mteb.get_task("SciFact")
    task.dataset = {
        "default": {
            "test": RetrievalSplitData(
                corpus=Dataset.from_dict(
                    {
                        "id": [d["_id"] for d in corpus],
                        "title": [d.get("title", "") for d in corpus],
                        "text": [d["text"] for d in corpus],
                    }
                ),
                queries=Dataset.from_dict({"id": [q["_id"] for q in queries], "text": [q["text"] for q in queries]}),
                relevant_docs=relevant,
                top_ranked=None,
            )
        }
    }
    return task


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dense-dot", "cls+mean+max"])
def test_sts_benchmark_scores_equal_mtebs(folders: dict[str, Path], mirror: Path, tmp_path: Path, name: str) -> None:
    import mteb
    from datasets import Dataset

    rows = [json.loads(line) for line in (mirror / "STSBenchmark" / "test.jsonl").read_text().splitlines()]
    task = mteb.get_task("STSBenchmark")
    columns = ("sentence1", "sentence2", "score")
    task.dataset = {"default": {"test": Dataset.from_list([{k: row[k] for k in columns} for row in rows])}}
    theirs = mteb_scores(folders[name], task)
    ours = evalkit_scores(folders[name], "STSBenchmark", mirror, tmp_path)
    assert ours["main_score"] == pytest.approx(theirs["main_score"], abs=1e-6)
    for metric in ("cosine_spearman", "cosine_pearson", "euclidean_spearman", "manhattan_spearman"):
        assert ours[metric] == pytest.approx(theirs[metric], abs=1e-6), metric


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dense-dot", "cls+mean+max"])
def test_scifact_scores_equal_mtebs(folders: dict[str, Path], mirror: Path, tmp_path: Path, name: str) -> None:
    data_dir = reduced_scifact(mirror, tmp_path / "mirror")
    theirs = mteb_scores(folders[name], scifact_task(data_dir))
    ours = evalkit_scores(folders[name], "SciFact", data_dir, tmp_path)
    for metric in ("ndcg_at_10", "map_at_10", "recall_at_100", "mrr_at_10"):
        assert ours[metric] == pytest.approx(theirs[metric], abs=1e-5), metric


def test_an_auto_map_of_library_classes_only_is_no_remote_code() -> None:
    from evalkit.registry.st_folder import needs_remote_code

    assert not needs_remote_code({"AutoTokenizer": ["BertTokenizer", None]})
    assert not needs_remote_code(None)
    assert needs_remote_code({"AutoModel": "modeling_custom.CustomModel"})
    assert needs_remote_code({"AutoTokenizer": ["org/repo--tokenization_x.XTokenizer", None]})
