"""Encoder adapters: each kind of model is one small module satisfying ``evalkit.encoders.protocol.Encoder``."""

from __future__ import annotations

from evalkit.encoders.protocol import Encoder
from evalkit.encoders.replicas import ReplicatedEncoder, parse_devices
from evalkit.errors import UnknownModelError
from evalkit.registry.models import ModelSpec


def load_encoder(spec: ModelSpec, *, device: str = "cpu", precision: str = "fp32") -> Encoder:
    """Instantiate the adapter a model spec names, one replica per device when several are given.

    Adapters import lazily: torch loads only when needed.
    """
    devices = parse_devices(device)
    if len(devices) > 1:
        return ReplicatedEncoder([load_encoder(spec, device=d, precision=precision) for d in devices])
    if spec.adapter == "hf":
        from evalkit.encoders.hf import HFEncoder

        return HFEncoder(spec, device=devices[0], precision=precision)
    raise UnknownModelError(f"model '{spec.name}' names an unknown adapter '{spec.adapter}'", field="adapter")
