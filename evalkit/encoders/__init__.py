"""Encoder adapters: each kind of model is one small module satisfying ``evalkit.encoders.protocol.Encoder``."""

from __future__ import annotations

from pathlib import Path

from evalkit.encoders.protocol import Encoder
from evalkit.encoders.replicas import ReplicatedEncoder, parse_devices
from evalkit.errors import UnknownModelError
from evalkit.registry.models import ModelSpec


def load_encoder(
    spec: ModelSpec,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    runtime: str = "auto",
    artifact_dir: Path | None = None,
) -> Encoder:
    """Instantiate the adapter a model spec names, one replica per device when several are given.

    Adapters import lazily: torch loads only when needed. ``artifact_dir`` holds what an adapter derives from the
    weights and keeps between runs (an exported ONNX graph); ``None`` means the embedding cache folder.
    """
    devices = parse_devices(device)
    if len(devices) > 1:
        return ReplicatedEncoder(
            [
                load_encoder(spec, device=d, precision=precision, runtime=runtime, artifact_dir=artifact_dir)
                for d in devices
            ]
        )
    if spec.adapter == "hf":
        from evalkit.encoders.hf import HFEncoder

        return HFEncoder(spec, device=devices[0], precision=precision, runtime=runtime, artifact_dir=artifact_dir)
    raise UnknownModelError(f"model '{spec.name}' names an unknown adapter '{spec.adapter}'", field="adapter")
