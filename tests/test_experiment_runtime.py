"""A reduced-precision run is filed by the runtime that computed its vectors: torch bf16 and OpenVINO bf16 differ
(~3e-3 per vector), so each has its own experiment folder and neither overwrites the other; fp32 runs (every
runtime reproduces torch there) and torch bf16 runs keep the folders they always had."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from evalkit.core import EmbeddingCore
from evalkit.encoders.protocol import Capabilities
from evalkit.errors import EvalkitError
from evalkit.options import RunOptions
from evalkit.pipeline import models as pipeline_models
from evalkit.pipeline.models import RunModels, build_models, resolve_run_model
from evalkit.pipeline.plan import load_all, plan_run
from evalkit.pipeline.tasks import evaluate_task
from evalkit.pipeline.warm import LazyEncoder
from evalkit.pipeline.write import write_task
from evalkit.registry.tasks import default_registry
from evalkit.results.layout import ResultsLayout, experiment_kwargs, experiment_name
from evalkit.retrievers import LEXICAL_CAPABILITIES
from evalkit.runner import RunConfig, run

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TASK = "BIOSSES"  # 100 sentence pairs: the smallest real task
BF16_TORCH = "output_dtypes_bfloat16"
BF16_OPENVINO = "output_dtypes_bfloat16__runtime_openvino"


def test_the_runtime_is_an_experiment_setting_only_in_reduced_precision_and_not_torch() -> None:
    assert experiment_kwargs("", "bf16", "torch") == {"output_dtypes": "bfloat16"}  # as every earlier bf16 run
    assert experiment_kwargs("", "bf16", None) == {"output_dtypes": "bfloat16"}  # not chosen yet: nothing to name
    assert experiment_kwargs("", "bf16", "openvino") == {"output_dtypes": "bfloat16", "runtime": "openvino"}
    assert experiment_kwargs("+pooling-cls", "fp16", "onnx") == {
        "pooling": "cls", "output_dtypes": "float16", "runtime": "onnx"
    }  # fmt: skip
    assert experiment_kwargs("", "fp32", "openvino") is None  # fp32: every runtime reproduces torch, one folder
    assert experiment_kwargs("+pooling-cls", "fp32", "onnx") == {"pooling": "cls"}
    with pytest.raises(EvalkitError):
        experiment_kwargs("", "bf16", "../x")  # a runtime name never becomes a path unchecked


def _run_models(encoder: Any, requested_runtime: str, precision: str = "bf16") -> RunModels:
    changes = experiment_kwargs("", precision)
    return RunModels(None, encoder, EmbeddingCore(), None, "r", None, None, None, None, None, changes,  # type: ignore[arg-type]
                     precision=precision, requested_runtime=requested_runtime)  # fmt: skip


def test_auto_is_not_asked_before_the_first_texts_and_a_model_without_a_runtime_names_none() -> None:
    pending = StubEncoder(SimpleNamespace(name="stub"), SimpleNamespace(precision="bf16", runtime="auto"))
    models = _run_models(pending, "auto")
    assert models.experiment_kwargs == {"output_dtypes": "bfloat16"} and not pending.probed  # never probed early
    models.core.encode(pending, ["a first text", "and a second"], "document")
    assert pending.probed and models.experiment_kwargs == {"output_dtypes": "bfloat16", "runtime": "openvino"}

    class Lexical:  # BM25: ranks texts itself, names no runtime
        capabilities = LEXICAL_CAPABILITIES

        def fingerprint(self) -> dict[str, object]:
            return {"model": "bm25", "k1": 1.2}

    for requested in ("auto", "openvino"):
        assert _run_models(Lexical(), requested).experiment_kwargs == {"output_dtypes": "bfloat16"}
    assert _run_models(pending, "openvino", "fp32").experiment_kwargs is None


@pytest.mark.slow  # imports mteb, whose serialisation names the folder
def test_the_folder_is_mtebs_name_of_those_settings() -> None:
    assert experiment_name(experiment_kwargs("", "bf16", "torch")) == BF16_TORCH
    assert experiment_name(experiment_kwargs("", "bf16", "openvino")) == BF16_OPENVINO


class StubEncoder:
    """A cheap encoder in place of the model's: its vectors depend on its runtime, as torch bf16 and OpenVINO bf16
    do; ``auto`` chooses OpenVINO when first needed, as the real probe may."""

    builds = 0

    def __init__(self, spec: Any, encoding: Any, *, artifact_dir: Path | None = None) -> None:
        type(self).builds += 1
        self.spec = spec
        self.name = spec.name
        self.precision = encoding.precision
        self._runtime = encoding.runtime
        self.probed = False
        self.capabilities = Capabilities()

    @property
    def runtime(self) -> str:
        if self._runtime == "auto":
            self.probed, self._runtime = True, "openvino"
        return self._runtime

    @property
    def runtime_choice(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "reason": "probed" if self.probed else "requested"}

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + text for text in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [[ord(char) for char in text.lower()[:128]] for text in texts]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        shift = 0.05 if self.runtime == "openvino" else 0.0  # a runtime's own rounding, exaggerated
        vectors = np.array([np.bincount(np.array(ids) % 32, minlength=32) for ids in token_ids], dtype=np.float32)
        vectors += shift * np.cos(np.arange(32, dtype=np.float32))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def fingerprint(self) -> dict[str, object]:
        digest = hashlib.sha256(b"stub-weights").hexdigest()
        return {"model": self.name, "weights_sha256": digest, "precision": self.precision, "runtime": self.runtime}


@pytest.fixture()
def stub(monkeypatch: pytest.MonkeyPatch) -> type[StubEncoder]:
    monkeypatch.setattr(pipeline_models, "build_encoder", StubEncoder)
    StubEncoder.builds = 0
    return StubEncoder


def _options(tmp_path: Path, mirror: Path, **named: Any) -> dict[str, Any]:
    return {
        "tasks": [TASK],
        "data_dirs": [mirror],
        "allow_hub": False,
        "output_dir": tmp_path / "results",
        "cache_dir": tmp_path / "cache",
        "show_progress": False,
        **named,
    }


def _run(tmp_path: Path, mirror: Path, **named: Any) -> Path:
    summary = run(RunConfig(MODEL, **_options(tmp_path, mirror, **named)), on_task_done=None)
    (written,) = summary.written
    return written.result_file


def _record(result_file: Path) -> dict[str, Any]:
    return json.loads((result_file.parent / "evalkit" / f"{TASK}.run.json").read_text(encoding="utf-8"))


def _experiment_of(result_file: Path) -> str | None:
    meta = json.loads((result_file.parent / "model_meta.json").read_text(encoding="utf-8"))
    return experiment_name(meta["experiment_kwargs"])


@pytest.mark.slow
def test_torch_and_openvino_bf16_runs_land_in_two_folders_and_a_warm_rerun_finds_its_own(
    tmp_path: Path, mirror: Path, stub: type[StubEncoder]
) -> None:
    torch_file = _run(tmp_path, mirror, precision="bf16", runtime="torch")
    torch_bytes = torch_file.read_bytes()
    openvino_file = _run(tmp_path, mirror, precision="bf16", runtime="openvino")

    assert torch_file.parent.name == BF16_TORCH and _experiment_of(torch_file) == BF16_TORCH  # as before
    assert openvino_file.parent.name == BF16_OPENVINO and _experiment_of(openvino_file) == BF16_OPENVINO
    assert torch_file.read_bytes() == torch_bytes  # not overwritten by the OpenVINO run
    assert _record(torch_file)["run_settings"]["runtime"] == "torch"
    assert _record(openvino_file)["run_settings"]["runtime"] == "openvino"  # the record agrees with the folder
    scores = [json.loads(path.read_text())["scores"]["test"][0]["main_score"] for path in (torch_file, openvino_file)]
    assert scores[0] != scores[1]  # two results, each kept

    builds = stub.builds
    warm_file = _run(tmp_path, mirror, precision="bf16", runtime="openvino")  # every vector cached, memo written
    assert stub.builds == builds  # warm: the encoder was never built, its runtime came from the memo
    assert warm_file == openvino_file and _record(warm_file)["run_settings"]["runtime"] == "openvino"
    assert _record(warm_file)["run_settings"]["embedding_stats"]["encoded"] == 0
    assert torch_file.read_bytes() == torch_bytes


@pytest.mark.slow
def test_fp32_runs_name_no_runtime(tmp_path: Path, mirror: Path, stub: type[StubEncoder]) -> None:
    result_file = _run(tmp_path, mirror, runtime="openvino")
    assert _experiment_of(result_file) is None
    assert "experiments" not in result_file.parts and _record(result_file)["run_settings"]["runtime"] == "openvino"


@pytest.mark.slow
def test_auto_at_bf16_names_the_runtime_its_first_encode_chose(
    tmp_path: Path, mirror: Path, stub: type[StubEncoder]
) -> None:
    """``--runtime auto`` chooses at the first encode (the probe measures the run's own texts): the folder is named
    from then on, never by asking earlier (which would probe on no texts)."""
    options = RunOptions.from_kwargs(**_options(tmp_path, mirror, precision="bf16", runtime="auto"))
    model, tag = resolve_run_model(MODEL, options)
    (spec,) = plan_run(options.selection, default_registry()).specs
    datasets, _, _ = load_all([spec], options.selection)
    models = build_models(model, tag, options, [(spec.name, spec.type)])
    encoder = models.encoder._real if isinstance(models.encoder, LazyEncoder) else models.encoder
    folder = (options.output.output_dir, model.results_folder_name, models.revision)
    named_early = ResultsLayout(*folder, models.experiment)
    assert models.vector_runtime() is None and not encoder.probed  # not asked before the run's texts

    started = dt.datetime.now(dt.timezone.utc)
    outcome = evaluate_task(spec, datasets[spec.name], models)
    assert encoder.probed and models.vector_runtime() == "openvino" and models.experiment == BF16_OPENVINO
    times = {"started_at": started, "finished_at": dt.datetime.now(dt.timezone.utc)}
    with pytest.raises(EvalkitError, match="is not the run's"):  # a folder named before the choice: refused
        write_task(named_early, spec, datasets[spec.name], outcome, models, options, **times)
    assert not named_early.revision_dir.exists()  # nothing half-written

    layout = ResultsLayout(*folder, models.experiment)
    write_task(layout, spec, datasets[spec.name], outcome, models, options, **times)
    record = _record(layout.task_result(TASK))
    assert layout.revision_dir.name == BF16_OPENVINO and record["run_settings"]["runtime"] == "openvino"
    assert record["run_settings"]["runtime_choice"]["reason"] == "probed"
