"""Several devices (``--device cpu,cpu``, ``cuda:0,cuda:1``): the run record says which runtime the replicas ran
and why, as it does for one device; replicas that disagree are each recorded, never one picked for all."""

from __future__ import annotations

from typing import Any

import numpy as np

from evalkit.encoders.replicas import ReplicatedEncoder


class StubReplica:
    """A token-level encoder on one device, with the runtime attributes an HFEncoder has."""

    name = "stub"

    def __init__(self, runtime: str, choice: dict[str, Any] | None) -> None:
        self.runtime = runtime
        self.runtime_choice = choice

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return texts

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [[len(text)] for text in texts]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return np.ones((len(token_ids), 2), dtype=np.float32)

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name, "runtime": self.runtime}


class PlainReplica(StubReplica):
    """An encoder that names no runtime at all (a custom Encoder)."""

    def __init__(self) -> None:
        pass


PROBED = {"runtime": "onnx", "reason": "probed", "probe_median_seconds": {"onnx": 0.1, "torch": 0.2}}


def test_replicas_built_alike_expose_their_runtime_choice() -> None:
    encoder = ReplicatedEncoder([StubReplica("onnx", dict(PROBED)), StubReplica("onnx", dict(PROBED))])
    assert encoder.runtime == "onnx"
    assert encoder.runtime_choice == PROBED
    # what evalkit/pipeline/models.py records: getattr(encoder, "runtime_choice", None)
    assert getattr(encoder, "runtime_choice", None) == PROBED


def test_replicas_that_differ_are_each_recorded_in_device_order() -> None:
    torch_choice = {"runtime": "torch", "reason": "probed", "probe_median_seconds": {"torch": 0.1}}
    encoder = ReplicatedEncoder([StubReplica("onnx", dict(PROBED)), StubReplica("torch", torch_choice)])
    assert encoder.runtime == "mixed"
    assert encoder.runtime_choice == {
        "runtime": "mixed",
        "reason": "replicas differ",
        "replicas": [PROBED, torch_choice],
    }


def test_replicas_without_runtime_attributes_record_none() -> None:
    encoder = ReplicatedEncoder([PlainReplica(), PlainReplica()])
    assert encoder.runtime_choice is None
    assert encoder.runtime == "torch"
    assert encoder.embed_batch([[1], [2]]).shape == (2, 2)
