"""Encoder adapters: each kind of model is one small module satisfying ``evalkit.encoders.protocol.Encoder``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.encoders.protocol import Encoder
from evalkit.encoders.replicas import ReplicatedEncoder, parse_devices
from evalkit.errors import UnknownModelError
from evalkit.registry.models import ModelSpec

if TYPE_CHECKING:
    from evalkit.retrievers import LexicalRetriever


def load_encoder(
    spec: ModelSpec,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    runtime: str = "auto",
    artifact_dir: Path | None = None,
) -> Encoder | LexicalRetriever:
    """Instantiate the adapter a model spec names, one replica per device when several are given.

    Adapters import lazily: torch loads only when needed. ``artifact_dir`` holds what an adapter derives from the
    weights and keeps between runs (an exported ONNX graph); ``None`` means the embedding cache folder.
    A lexical model (``adapter: bm25``) is no encoder: it comes back as an ``evalkit.retrievers.LexicalRetriever``,
    which ranks texts itself. An embedding API (``adapter: openai-api``) runs remotely, on no local device.
    """
    if spec.adapter == "bm25":
        from evalkit.retrievers.bm25 import BM25Retriever

        return BM25Retriever(spec.name)
    if spec.adapter == "openai-api":
        from evalkit.encoders.remote_api import RemoteEmbeddingEncoder

        assert spec.api_base_url is not None  # the registry requires it for this adapter
        return RemoteEmbeddingEncoder(
            name=spec.name,
            base_url=spec.api_base_url,
            model=spec.name.split("/", 1)[-1],
            api_key_env=spec.api_key_env,
            embedding_dim=spec.embedding_dim,
        )
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
    if spec.adapter == "bge-m3":  # dense + sparse + ColBERT outputs (FlagEmbedding's M3 model)
        from evalkit.encoders.bge_m3 import BGEM3Encoder

        return BGEM3Encoder(spec, device=devices[0], precision=precision, runtime=runtime, artifact_dir=artifact_dir)
    if spec.adapter == "splade":  # sparse term weights from a masked-language model
        from evalkit.encoders.splade import SpladeEncoder

        return SpladeEncoder(spec, device=devices[0], precision=precision, runtime=runtime, artifact_dir=artifact_dir)
    if spec.adapter == "onnx":
        from evalkit.encoders.onnx_model import OnnxModelEncoder

        return OnnxModelEncoder(spec, device=devices[0], precision=precision)
    raise UnknownModelError(f"model '{spec.name}' names an unknown adapter '{spec.adapter}'", field="adapter")
