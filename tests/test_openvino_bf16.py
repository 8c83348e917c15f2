"""bf16 on a CPU through OpenVINO's fused bf16 kernels: the exported, checked graph compiled with a bf16 hint, run only
where the CPU has bf16 units, checked against the fp32 graph before it is trusted, probed against torch bf16 by
``--runtime auto``, and cached and recorded apart from torch's bf16 vectors.

The refusals and the guard's arithmetic run without a model; the rest runs the packaged all-MiniLM-L6-v2 on the
first 20 SciFact documents of the shared mirror.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalkit.cache.keys import namespace_id, namespace_record
from evalkit.core import EmbeddingCore
from evalkit.encoders import graph_runtime, hf, load_encoder, onnx_runtime
from evalkit.encoders.graph_runtime import BF16_MIN_COSINE, check_bf16, min_cosine, refuse_graph_runtime
from evalkit.encoders.runtime_probe import choose_runtime
from evalkit.errors import EvalkitError
from evalkit.registry.models import resolve_model

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Measured on the dev box (AMD EPYC, avx512_bf16), these 20 documents: OpenVINO bf16 vs torch fp32 min cosine
# 0.999974 (torch bf16: 0.999932). Asserted with a margin of ~3x its distance from 1.
MEASURED_FLOOR = 0.9999


def bf16_host() -> None:
    """Skip where OpenVINO bf16 cannot run: the feature refuses there (tested below with the units patched away)."""
    pytest.importorskip("openvino")
    if not onnx_runtime.openvino_has_bf16():
        pytest.skip("this CPU has no bf16 units OpenVINO can use")


@pytest.fixture(scope="module")
def spec():
    return resolve_model(MODEL)


@pytest.fixture(scope="module")
def documents(mirror: Path) -> list[str]:
    with (mirror / "SciFact" / "corpus.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(next(lines)) for _ in range(20)]
    return [f"{row.get('title', '')} {row['text']}".strip() for row in rows]


def encode(encoder, texts: list[str]) -> np.ndarray:
    return EmbeddingCore(show_progress=False).encode(encoder, texts, "document")


# --- refusals and the guard, no model ------------------------------------------------------------------------------


def test_graph_runtimes_refuse_what_they_do_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_runtime, "openvino_available", lambda: True)
    monkeypatch.setattr(onnx_runtime, "openvino_has_bf16", lambda: True)
    with pytest.raises(EvalkitError, match="runs fp32 on a CPU only"):
        refuse_graph_runtime("onnx", "cpu", "bf16", "right")
    with pytest.raises(EvalkitError, match="runs fp32 or bf16 on a CPU only"):
        refuse_graph_runtime("openvino", "cuda", "bf16", "right")
    with pytest.raises(EvalkitError, match="runs fp32 or bf16 on a CPU only"):
        refuse_graph_runtime("openvino", "cpu", "fp16", "right")
    refuse_graph_runtime("openvino", "cpu", "bf16", "right")  # fits: no error
    monkeypatch.setattr(onnx_runtime, "openvino_has_bf16", lambda: False)
    with pytest.raises(EvalkitError, match="needs a CPU with bf16 units") as refused:
        refuse_graph_runtime("openvino", "cpu", "bf16", "right")
    assert "\n" not in str(refused.value)
    refuse_graph_runtime("openvino", "cpu", "fp32", "right")  # fp32 needs no bf16 units
    monkeypatch.setattr(onnx_runtime, "openvino_available", lambda: False)
    with pytest.raises(EvalkitError, match="needs the openvino package"):
        refuse_graph_runtime("openvino", "cpu", "bf16", "right")


def test_auto_at_bf16_measures_openvino_only_where_it_runs_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_runtime, "onnxruntime_available", lambda: True)
    monkeypatch.setattr(onnx_runtime, "openvino_available", lambda: True)
    monkeypatch.setattr(onnx_runtime, "openvino_has_bf16", lambda: True)
    candidates = graph_runtime.auto_candidates
    assert candidates("cpu", "bf16", "right", True) == (("torch", "openvino"), "")  # ONNX Runtime runs fp32 only
    assert candidates("cpu", "fp32", "right", True) == (("torch", "onnx", "openvino"), "")  # fp32 as before
    assert candidates("cpu", "bf16", "right", False)[0] == ("torch",)  # BGE-M3, SPLADE: their own forward
    assert candidates("cuda", "bf16", "right", True)[0] == ("torch",)
    assert candidates("cpu", "bf16", "left", True)[0] == ("torch",)
    monkeypatch.setattr(onnx_runtime, "openvino_has_bf16", lambda: False)
    names, why = candidates("cpu", "bf16", "right", True)
    assert names == ("torch",) and "no bf16 units" in why


def test_the_guard_refuses_a_bf16_graph_that_drifts_from_fp32(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((6, 16)).astype(np.float32)
    rounded = reference + rng.standard_normal(reference.shape).astype(np.float32) * 1e-3  # bf16-sized rounding
    assert check_bf16(rounded, reference, tmp_path / "g.onnx") >= BF16_MIN_COSINE
    broken = rounded.copy()
    broken[3] = rng.standard_normal(16)  # one text's vector wrong: the minimum, not the mean, decides
    with pytest.raises(EvalkitError, match=r"cosine 0\.1\d+ .* \(below 0\.9995\)") as refused:
        check_bf16(broken, reference, tmp_path / "g.onnx")
    assert "\n" not in str(refused.value) and "g.onnx" in str(refused.value)
    zero = np.zeros((1, 16), dtype=np.float32)
    assert min_cosine(zero, zero) == 1.0 and min_cosine(zero, reference[:1]) == -1.0


def test_the_probe_at_bf16_takes_the_faster_within_the_bf16_tolerance(tmp_path: Path) -> None:
    """Two bf16 paths differ by bf16 rounding (~3e-3): the fp32 tolerance would leave OpenVINO out, bf16's keeps it."""
    from evalkit.encoders import runtime_probe

    now = [0.0]
    costs = {"torch": 2.0, "openvino": 1.0}

    def runtime(name: str, offset: float):
        def embed(batch: list[list[int]]) -> np.ndarray:
            now[0] += costs[name]
            return np.full((len(batch), 4), 0.5 + offset, dtype=np.float32)

        return embed

    candidates = {"torch": runtime("torch", 0.0), "openvino": runtime("openvino", 3e-3)}
    setting = {"device": "cpu", "precision": "bf16"}
    choose = {"memo_root": tmp_path, "host": {"cpu": "Test"}, "weights_sha256": "ab" * 32, "setting": setting}
    batches = [[[1, 2, 3]], [[4, 5]]]
    bf16 = choose_runtime(candidates, lambda: batches, **choose, tolerance=runtime_probe.BF16_VECTOR_TOLERANCE,
                          clock=lambda: now[0])  # fmt: skip
    assert (bf16.runtime, bf16.reason) == ("openvino", "probed")
    fp32_rule = runtime_probe.probe(candidates, batches, clock=lambda: now[0])
    assert fp32_rule.runtime == "torch" and "openvino left out" in fp32_rule.detail


# --- the packaged MiniLM on SciFact documents ------------------------------------------------------------------------


@pytest.mark.slow
def test_openvino_bf16_vectors_match_fp32_and_are_keyed_apart_from_torch_bf16(
    spec, documents: list[str], tmp_path: Path
) -> None:
    bf16_host()
    fp32 = encode(load_encoder(spec, runtime="torch", artifact_dir=tmp_path), documents)
    openvino = load_encoder(spec, runtime="openvino", precision="bf16", artifact_dir=tmp_path)
    vectors = encode(openvino, documents)
    assert min_cosine(vectors, fp32) >= MEASURED_FLOOR
    assert 0 < float(np.abs(vectors - fp32).max()) < 5e-3  # bf16 indeed (not an f32 run), and close
    choice = openvino.runtime_choice
    assert choice["runtime"] == "openvino" and choice["reason"] == "requested"
    assert choice["bf16_check"]["min_cosine_vs_fp32_graph"] >= MEASURED_FLOOR and choice["bf16_check"]["texts"] >= 1
    torch_bf16 = load_encoder(spec, runtime="torch", precision="bf16", artifact_dir=tmp_path)
    torch_vectors = encode(torch_bf16, documents)
    assert float(np.abs(vectors - torch_vectors).max()) > 1e-5  # two bf16 paths round differently...
    keys = [  # ...so they must never share a cache namespace
        namespace_id(namespace_record(encoder.fingerprint(), role="document", prompt="", precision="bf16"))
        for encoder in (openvino, torch_bf16)
    ]
    assert keys[0] != keys[1]
    assert openvino.fingerprint()["runtime"] == "openvino" and torch_bf16.fingerprint()["runtime"] == "torch"


@pytest.mark.slow
def test_encoders_refuse_openvino_bf16_where_it_would_not_be_bf16(spec, monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(EvalkitError, match="fp32 or bf16 on a CPU only"):
        load_encoder(spec, device="cuda", precision="bf16", runtime="openvino", artifact_dir=tmp_path)
    with pytest.raises(EvalkitError, match="runs fp32 on a CPU only"):
        load_encoder(spec, precision="bf16", runtime="onnx", artifact_dir=tmp_path)
    with pytest.raises(EvalkitError, match="fp16 needs a GPU"):
        load_encoder(spec, precision="fp16", runtime="openvino", artifact_dir=tmp_path)
    monkeypatch.setattr(onnx_runtime, "openvino_available", lambda: True)
    monkeypatch.setattr(onnx_runtime, "openvino_has_bf16", lambda: False)
    with pytest.raises(EvalkitError, match="needs a CPU with bf16 units"):
        load_encoder(spec, precision="bf16", runtime="openvino", artifact_dir=tmp_path)
    auto = load_encoder(spec, precision="bf16", artifact_dir=tmp_path).runtime_choice
    assert auto["runtime"] == "torch" and auto["reason"] == "only candidate" and "no bf16 units" in auto["detail"]


@pytest.mark.slow
def test_a_bf16_graph_that_fails_the_guard_is_refused_before_any_vector(
    spec, documents, monkeypatch, tmp_path: Path
) -> None:
    bf16_host()
    monkeypatch.setattr(graph_runtime, "BF16_MIN_COSINE", 1.5)  # no graph can pass: every check now "drifts"
    encoder = load_encoder(spec, runtime="openvino", precision="bf16", artifact_dir=tmp_path)
    with pytest.raises(EvalkitError, match="OpenVINO's bf16 graph gives vectors at cosine"):
        encode(encoder, documents[:4])


@pytest.mark.slow
@pytest.mark.parametrize(("costs", "expected"), [({"torch": 3.0, "openvino": 1.0}, "openvino"),
                                                 ({"torch": 1.0, "openvino": 3.0}, "torch")])  # fmt: skip
def test_auto_at_bf16_takes_the_runtime_the_probe_measured_faster(
    spec, documents, monkeypatch, tmp_path: Path, costs: dict[str, float], expected: str
) -> None:
    bf16_host()
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "host"))
    now = [0.0]

    def timed(name: str, embed):
        def run(batch):
            now[0] += costs[name]
            return embed(batch)

        return run

    def fake_clock_choice(candidates, sample, **kwargs):  # the real probe, real vectors, a fake clock
        assert set(candidates) == {"torch", "openvino"}
        wrapped = {name: timed(name, embed) for name, embed in candidates.items()}
        return choose_runtime(wrapped, sample, **{**kwargs, "clock": lambda: now[0]})

    monkeypatch.setattr(hf, "choose_runtime", fake_clock_choice)
    encoder = load_encoder(spec, precision="bf16", artifact_dir=tmp_path)
    vectors = encode(encoder, documents[:8])
    choice = encoder.runtime_choice
    assert (choice["runtime"], choice["reason"]) == (expected, "probed")
    assert set(choice["probe_median_seconds"]) == {"torch", "openvino"}
    assert encoder.fingerprint()["runtime"] == expected and encoder.fingerprint()["precision"] == "bf16"
    assert vectors.shape == (8, 384)
    again = load_encoder(spec, precision="bf16", artifact_dir=tmp_path)
    assert again.runtime == expected and again.runtime_choice["reason"] == "remembered"


@pytest.mark.slow
def test_the_run_record_says_openvino_ran_at_bf16(mirror: Path, monkeypatch, tmp_path: Path) -> None:
    bf16_host()
    import evalkit

    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "host"))
    folder = tmp_path / "data" / "STSBenchmark"
    folder.mkdir(parents=True)
    for path in (mirror / "STSBenchmark").iterdir():
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            (folder / path.name).write_text("".join(lines[:21]), encoding="utf-8")
    output = tmp_path / "results"
    options = {"data_dir": tmp_path / "data", "cache_dir": tmp_path / "cache", "show_progress": False}
    evalkit.evaluate(MODEL, "STSBenchmark", output=output, on_task_done=None, precision="bf16", runtime="openvino",
                     **options)  # fmt: skip
    (record_file,) = output.glob("*/*/experiments/*/evalkit/STSBenchmark.run.json")
    settings = json.loads(record_file.read_text())["run_settings"]
    assert (settings["precision"], settings["runtime"]) == ("bf16", "openvino")
    assert settings["runtime_choice"]["runtime"] == "openvino"
    assert settings["runtime_choice"]["bf16_check"]["min_cosine_vs_fp32_graph"] >= BF16_MIN_COSINE


@pytest.mark.slow
def test_the_cli_refuses_openvino_bf16_without_bf16_units_with_one_line_and_exit_2(
    mirror: Path, monkeypatch, tmp_path: Path, capsys
) -> None:
    from evalkit.cli import main

    monkeypatch.setattr(onnx_runtime, "openvino_available", lambda: True)
    monkeypatch.setattr(onnx_runtime, "openvino_has_bf16", lambda: False)
    common = ["--model", MODEL, "--tasks", "STSBenchmark", "--data-dir", str(mirror), "--output", str(tmp_path)]
    for runtime, reason in (("openvino", "needs a CPU with bf16 units"), ("onnx", "runs fp32 on a CPU only")):
        assert main(["run", *common, "--runtime", runtime, "--precision", "bf16"]) == 2
        err = capsys.readouterr().err.strip()
        assert reason in err and len(err.splitlines()) == 1
    assert not list(tmp_path.rglob("*.json"))  # refused before any result was written
