"""``--runtime auto``: the faster faithful runtime by a short probe, remembered per host and weights, recorded.

The probe's logic is checked with two fake runtimes on a fake clock (so "faster" is certain, not a timing); the
HFEncoder and the run record are checked with the packaged MiniLM on real text.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalkit.encoders import runtime_probe
from evalkit.encoders.runtime_probe import choose_runtime, memo_path, probe, probe_batches

HOST = {"cpu": "Test CPU", "cores": "2", "version:torch": "1.0"}
WEIGHTS = "ab" * 32
SETTING = {"device": "cpu", "precision": "fp32"}
BATCHES = [[[1, 2, 3]], [[4, 5]]]


class FakeRuntimes:
    """Two runtimes that advance a shared fake clock by their cost per batch, and count their calls."""

    def __init__(self, costs: dict[str, float], offsets: dict[str, float] | None = None) -> None:
        self.now = 0.0
        self.costs = costs
        self.offsets = offsets or {}
        self.calls = dict.fromkeys(costs, 0)

    def clock(self) -> float:
        return self.now

    def runtimes(self) -> dict[str, object]:
        return {name: (lambda batch, name=name: self._run(name, batch)) for name in self.costs}

    def _run(self, name: str, batch: list[list[int]]) -> np.ndarray:
        self.calls[name] += 1
        self.now += self.costs[name]
        return np.full((len(batch), 4), 0.5 + self.offsets.get(name, 0.0), dtype=np.float32)


def choose(fake: FakeRuntimes, root: Path, host=HOST, weights=WEIGHTS):
    return choose_runtime(
        fake.runtimes(), lambda: BATCHES, memo_root=root, host=host, weights_sha256=weights, setting=SETTING,
        clock=fake.clock,
    )  # fmt: skip


def test_the_probe_picks_the_faster_runtime_and_remembers_it(tmp_path: Path) -> None:
    fake = FakeRuntimes({"torch": 2.0, "onnx": 1.0})
    choice = choose(fake, tmp_path)
    assert (choice.runtime, choice.reason) == ("onnx", "probed")
    assert choice.seconds == {"torch": 4.0, "onnx": 2.0}  # two batches per round, median of the rounds
    # one faithfulness pass plus two timed rounds, over both batches, for each runtime (A B A B)
    assert fake.calls == {"torch": 6, "onnx": 6}
    again = FakeRuntimes({"torch": 2.0, "onnx": 1.0})
    remembered = choose(again, tmp_path)
    assert (remembered.runtime, remembered.reason) == ("onnx", "remembered")
    assert again.calls == {"torch": 0, "onnx": 0}  # nothing run: the memo answered
    assert remembered.record()["probe_median_seconds"] == {"torch": 4.0, "onnx": 2.0}
    slower_onnx = choose(FakeRuntimes({"torch": 1.0, "onnx": 3.0}), tmp_path / "other")
    assert slower_onnx.runtime == "torch"


@pytest.mark.parametrize("change", ["host", "weights"])
def test_a_new_host_or_new_weights_probe_again(tmp_path: Path, change: str) -> None:
    choose(FakeRuntimes({"torch": 2.0, "onnx": 1.0}), tmp_path)
    host = {**HOST, "cores": "16"} if change == "host" else HOST
    weights = "cd" * 32 if change == "weights" else WEIGHTS
    fake = FakeRuntimes({"torch": 1.0, "onnx": 2.0})  # the other host / weights: torch is faster there
    choice = choose(fake, tmp_path, host=host, weights=weights)
    assert (choice.runtime, choice.reason) == ("torch", "probed")
    assert fake.calls["torch"] > 0
    assert len(list((tmp_path / runtime_probe.MEMO_FOLDER).glob("*.json"))) == 2  # both remembered


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xffnot json",
        b"[1, 2, 3]",
        b'{"format": 1}',
        b"[" * 100_000,  # deep nesting: too large, never parsed
        "runtime-is-a-path",
        "seconds-nan",
        "seconds-of-an-unknown-runtime",
    ],
)
def test_a_corrupted_or_hostile_memo_is_ignored_and_probed_again(tmp_path: Path, content: bytes | str) -> None:
    choose(FakeRuntimes({"torch": 2.0, "onnx": 1.0}), tmp_path)
    (path,) = (tmp_path / runtime_probe.MEMO_FOLDER).glob("*.json")
    assert path == memo_path(tmp_path, HOST, WEIGHTS, SETTING)
    memo = json.loads(path.read_text())
    if content == "runtime-is-a-path":
        memo["runtime"] = "../../etc/passwd"
    elif content == "seconds-nan":
        memo["seconds"] = {"torch": float("nan"), "onnx": 1.0}
    elif content == "seconds-of-an-unknown-runtime":
        memo["seconds"] = {"tensorrt": 0.1}
    path.write_bytes(json.dumps(memo).encode() if isinstance(content, str) else content)
    fake = FakeRuntimes({"torch": 1.0, "onnx": 2.0})
    choice = choose(fake, tmp_path)
    assert (choice.runtime, choice.reason) == ("torch", "probed")
    assert json.loads(path.read_text())["runtime"] == "torch"  # rewritten, whole


def test_a_memo_that_is_a_folder_or_unwritable_only_means_probing_again(tmp_path: Path) -> None:
    memo_path(tmp_path, HOST, WEIGHTS, SETTING).mkdir(parents=True)
    assert choose(FakeRuntimes({"torch": 2.0, "onnx": 1.0}), tmp_path).reason == "probed"
    assert choose(FakeRuntimes({"torch": 2.0, "onnx": 1.0}), tmp_path).reason == "probed"


def test_only_runtimes_that_reproduce_the_reference_vectors_are_candidates() -> None:
    fake = FakeRuntimes({"torch": 2.0, "onnx": 1.0}, offsets={"onnx": 2e-6})  # faster, but not faithful
    choice = probe(fake.runtimes(), BATCHES, clock=fake.clock)
    assert choice.runtime == "torch" and "onnx left out (vectors differ" in choice.detail
    within = FakeRuntimes({"torch": 2.0, "onnx": 1.0}, offsets={"onnx": 5e-7})
    assert probe(within.runtimes(), BATCHES, clock=within.clock).runtime == "onnx"

    def broken(batch):
        raise RuntimeError("export refused")

    refused = probe({"torch": fake.runtimes()["torch"], "onnx": broken}, BATCHES, clock=fake.clock)
    assert refused.runtime == "torch" and "onnx left out (export refused)" in refused.detail


def test_probe_batches_are_the_longest_texts_in_the_cores_budget() -> None:
    token_ids = [[1] * n for n in (5, 300, 40, 300, 2, 100)]
    first, second = probe_batches(token_ids, budget=600, count=2)
    assert [len(ids) for ids in first] == [300, 300]
    assert [len(ids) for ids in second] == [100, 40, 5, 2]


def test_one_candidate_is_chosen_without_probing(tmp_path: Path) -> None:
    fake = FakeRuntimes({"torch": 1.0})
    choice = choose(fake, tmp_path)
    assert (choice.runtime, choice.reason) == ("torch", "only candidate") and fake.calls["torch"] == 0
    assert not (tmp_path / runtime_probe.MEMO_FOLDER).exists()


def test_the_host_key_names_the_processor_cores_and_library_versions() -> None:
    host = runtime_probe.host_key()
    assert host["cores"].isdigit() and host["cpu"]
    assert host["version:torch"] != "absent" and "version:onnxruntime" in host


@pytest.mark.slow
def test_the_encoder_probes_remembers_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from evalkit.core import EmbeddingCore
    from evalkit.encoders import load_encoder
    from evalkit.registry.models import resolve_model

    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    spec = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    texts = ["Vitamin D deficiency raises the risk of fractures.", "A short one.", "Mitochondria make ATP. " * 8]
    first = load_encoder(spec, artifact_dir=tmp_path / "art")
    vectors = EmbeddingCore(show_progress=False).encode(first, texts, "document")
    assert first.runtime_choice["reason"] == "probed"
    assert set(first.runtime_choice["probe_median_seconds"]) >= {"torch", "onnx"}  # and openvino, if installed
    second = load_encoder(spec, artifact_dir=tmp_path / "art")
    again = EmbeddingCore(show_progress=False).encode(second, texts, "document")
    assert second.runtime_choice["reason"] == "remembered" and second.runtime == first.runtime
    np.testing.assert_array_equal(vectors, again)  # the same runtime, the same vectors, bit for bit
    assert load_encoder(spec, runtime="torch").runtime_choice == {"runtime": "torch", "reason": "requested"}
    from evalkit.encoders import onnx_runtime  # bf16 without OpenVINO: torch bf16 is the one candidate

    monkeypatch.setattr(onnx_runtime, "openvino_available", lambda: False)
    bf16 = load_encoder(spec, precision="bf16").runtime_choice
    assert bf16["runtime"] == "torch" and bf16["reason"] == "only candidate" and "not installed" in bf16["detail"]


@pytest.mark.slow
def test_the_run_record_names_the_runtime_and_why(tmp_path: Path, mirror: Path, monkeypatch) -> None:
    import evalkit

    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "host-cache"))
    folder = tmp_path / "data" / "STSBenchmark"
    folder.mkdir(parents=True)
    source = mirror / "STSBenchmark"
    for path in source.iterdir():
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            (folder / path.name).write_text("".join(lines[:21]), encoding="utf-8")
    output = tmp_path / "results"
    options = {"data_dir": tmp_path / "data", "cache_dir": tmp_path / "cache", "show_progress": False}
    # The memo lives in the run's cache folder; with the cache off, in the run's scratch folder (not remembered).
    for expected, use_cache in (("probed", True), ("remembered", True), ("probed", False)):
        evalkit.evaluate("sentence-transformers/all-MiniLM-L6-v2", "STSBenchmark", output=output, on_task_done=None,
                         use_cache=use_cache, **options)  # fmt: skip
        (record_file,) = output.glob("*/*/evalkit/STSBenchmark.run.json")
        settings = json.loads(record_file.read_text())["run_settings"]
        assert settings["runtime_choice"]["reason"] == expected
        assert settings["runtime_choice"]["runtime"] == settings["runtime"]
    assert len(list((tmp_path / "cache" / "runtime-probe").glob("*.json"))) == 1
    assert not (tmp_path / "host-cache" / "runtime-probe").exists()


@pytest.mark.slow
def test_openvino_where_installed_reproduces_torch_within_1e_6(tmp_path: Path) -> None:
    pytest.importorskip("openvino")  # the openvino extra (in dev): auto probes it where it is installed
    from evalkit.core import EmbeddingCore
    from evalkit.encoders import load_encoder
    from evalkit.registry.models import resolve_model

    spec = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    texts = ["Vitamin D deficiency raises the risk of fractures.", "A short one.", "Mitochondria make ATP. " * 40]
    vectors = {
        runtime: EmbeddingCore(show_progress=False).encode(
            load_encoder(spec, runtime=runtime, artifact_dir=tmp_path), texts, "document"
        )
        for runtime in ("torch", "openvino")
    }
    assert float(np.abs(vectors["openvino"] - vectors["torch"]).max()) <= runtime_probe.VECTOR_TOLERANCE
