"""The ONNX Runtime fp32 path: picked where it fits, equal to torch within fp32 rounding, exported once, checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalkit.core import EmbeddingCore
from evalkit.encoders import load_encoder, onnx_runtime
from evalkit.errors import EvalkitError
from evalkit.registry.models import resolve_model

TEXTS = [
    "Vitamin D deficiency is associated with an increased risk of fractures.",
    "x",
    "The mitochondria is the powerhouse of the cell, " * 30,  # truncated at the model's max length
    "Vitamin D deficiency is associated with an increased risk of fractures.",
]


@pytest.fixture(scope="module")
def spec():
    return resolve_model("sentence-transformers/all-MiniLM-L6-v2")


def encode(encoder) -> np.ndarray:
    return EmbeddingCore(show_progress=False, token_budget=512).encode(encoder, TEXTS, "document")


@pytest.mark.slow  # two real probes (fp32, bf16): ~15 s on 2 cores
def test_auto_measures_onnx_against_torch_for_fp32_on_cpu_and_never_runs_onnx_for_bf16(spec, tmp_path: Path) -> None:
    auto = load_encoder(spec, artifact_dir=tmp_path)  # the faster on this host (tests/test_runtime_probe.py)
    assert auto.runtime in ("onnx", "torch", "openvino") and auto.runtime_choice["reason"] in ("probed", "remembered")
    # ONNX Runtime runs fp32 only: bf16 is torch's or OpenVINO's (tests/test_openvino_bf16.py)
    assert load_encoder(spec, precision="bf16", artifact_dir=tmp_path).runtime in ("torch", "openvino")
    with pytest.raises(EvalkitError, match="fp32 on a CPU"):
        load_encoder(spec, precision="bf16", runtime="onnx", artifact_dir=tmp_path)
    with pytest.raises(EvalkitError, match="unknown runtime"):
        load_encoder(spec, runtime="tensorrt", artifact_dir=tmp_path)


def test_onnx_vectors_equal_torch_within_fp32_rounding_and_export_is_reused(spec, tmp_path: Path) -> None:
    onnx_encoder = load_encoder(spec, runtime="onnx", artifact_dir=tmp_path)
    torch_encoder = load_encoder(spec, runtime="torch", artifact_dir=tmp_path)
    onnx_vectors, torch_vectors = encode(onnx_encoder), encode(torch_encoder)
    assert np.abs(onnx_vectors - torch_vectors).max() < 1e-5
    np.testing.assert_array_equal(onnx_vectors[0], onnx_vectors[3])
    (exported,) = (tmp_path / "onnx").glob("*.onnx")
    stamp = exported.stat().st_mtime_ns
    again = load_encoder(spec, runtime="onnx", artifact_dir=tmp_path)
    np.testing.assert_array_equal(encode(again), onnx_vectors)
    assert exported.stat().st_mtime_ns == stamp  # read back, not exported again
    # the runtime is part of the cache key: vectors from the two paths never mix
    assert onnx_encoder.fingerprint() != torch_encoder.fingerprint()


def test_an_export_that_disagrees_with_torch_is_refused_and_leaves_nothing(spec, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(onnx_runtime, "EXPORT_TOLERANCE", -1.0)  # every probe now "disagrees"
    encoder = load_encoder(spec, runtime="onnx", artifact_dir=tmp_path)
    with pytest.raises(EvalkitError, match="differs from torch"):
        encode(encoder)
    assert not list((tmp_path / "onnx").iterdir())  # no half-written or unchecked graph is kept
