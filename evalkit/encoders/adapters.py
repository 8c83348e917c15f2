"""Adapters registered by name and imported lazily; one entry point builds every model a run uses.

As lm-evaluation-harness registers its models: ``register("hf", lazy="evalkit.encoders.hf:HFEncoder")`` names
the class without importing it, so ``evalkit models`` or an argument error never loads torch, and an unknown
adapter lists the known ones. A registered class builds itself with ``from_spec(spec, encoding, artifact_dir=...)``
(a function registered instead is called the same way).

:func:`build_encoder` and :func:`build_pair_scorer` hand EVERY encoding option (device, precision, runtime, the
artefact folder) to every model — the model under test, a hybrid's sparse model, a reranker, a Ray worker's
replica — so none can miss one (a reranker built without the run's precision reranked in fp32 while the run was
filed as a bf16 experiment, ``experiments/output_dtypes_bfloat16``). Each adapter decides what an option means
for it, and refuses what it cannot honour.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from evalkit.encoders.replicas import ReplicatedEncoder, parse_devices
from evalkit.errors import UnknownModelError
from evalkit.registry.models import ModelSpec

if TYPE_CHECKING:
    from evalkit.encoders.protocol import Encoder, PairScorer, TextEncoder
    from evalkit.retrievers import LexicalRetriever


class EncodingSettings(Protocol):
    """The encoding options every model gets (``evalkit.options.EncodingOptions`` has them, and more)."""

    device: str
    precision: str
    runtime: str


@dataclass(frozen=True)
class Encoding:
    """The encoding options as a plain record, for callers without a run's option sections (tests, workers)."""

    device: str = "cpu"
    precision: str = "fp32"
    runtime: str = "auto"


@dataclass(frozen=True)
class Adapter:
    """A registered adapter: where its class lives, and whether a copy per device makes sense."""

    name: str
    lazy: str  # "package.module:Attribute"
    replicable: bool = True  # one replica per device of a multi-device ``--device``
    kind: str = "encoder"  # encoder (tokens or texts), pairs (a cross-encoder) or lexical (ranks texts itself)
    weights: str = "local"  # local (packaged or from the hub), remote (an API keeps them) or none (BM25)

    def load(self) -> Any:
        module_name, _, attribute = self.lazy.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


ADAPTERS: dict[str, Adapter] = {}


def register(name: str, *, lazy: str, replicable: bool = True, kind: str = "encoder", weights: str = "local") -> None:
    """Name an adapter (``lazy`` is ``"module:Class"``, imported on first use); a name is registered once."""
    if name in ADAPTERS and ADAPTERS[name].lazy != lazy:
        raise ValueError(f"adapter '{name}' is registered already (as {ADAPTERS[name].lazy})")
    ADAPTERS[name] = Adapter(name, lazy, replicable, kind, weights)


def adapter(name: str, *, model: str = "") -> Adapter:
    """The registered adapter ``name``, or an error naming the known ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        owner = f"model '{model}' names " if model else ""
        raise UnknownModelError(
            f"{owner}an unknown adapter '{name}' (known: {', '.join(sorted(ADAPTERS))})", field="adapter"
        ) from None


register("hf", lazy="evalkit.encoders.hf:HFEncoder")
register("bge-m3", lazy="evalkit.encoders.bge_m3:BGEM3Encoder")  # dense + sparse + ColBERT (FlagEmbedding's M3)
register("splade", lazy="evalkit.encoders.splade:SpladeEncoder")  # sparse term weights from a masked LM
register("onnx", lazy="evalkit.encoders.onnx_model:OnnxModelEncoder")
register("openai-api", lazy="evalkit.encoders.remote_api:RemoteEmbeddingEncoder", replicable=False, weights="remote")
register("bm25", lazy="evalkit.encoders.adapters:bm25_retriever", replicable=False, kind="lexical", weights="none")
register("cross-encoder", lazy="evalkit.encoders.cross_encoder:CrossEncoderReranker", replicable=False, kind="pairs")


def build_encoder(
    spec: ModelSpec, encoding: EncodingSettings, *, artifact_dir: Path | None = None
) -> Encoder | TextEncoder | LexicalRetriever:
    """The model a spec names, built with every encoding option; one replica per device when several are given.

    ``artifact_dir`` holds what an adapter derives from the weights and keeps between runs (an exported ONNX
    graph); ``None`` means the embedding cache folder. A lexical model (``adapter: bm25``) comes back as an
    ``evalkit.retrievers.LexicalRetriever``, which ranks texts itself; an embedding API runs on no local device.
    A cross-encoder is no encoder of texts: build it with :func:`build_pair_scorer`.
    """
    entry = adapter(spec.adapter, model=spec.name)
    if entry.kind == "pairs":
        raise UnknownModelError(
            f"model '{spec.name}' is a cross-encoder (it scores pairs); use it as --reranker", field="adapter"
        )
    devices = parse_devices(encoding.device) if entry.replicable else [encoding.device]
    build = _builder(entry)
    if len(devices) > 1:
        return ReplicatedEncoder([build(spec, _on_device(encoding, d), artifact_dir=artifact_dir) for d in devices])
    return build(spec, _on_device(encoding, devices[0]), artifact_dir=artifact_dir)


def build_pair_scorer(spec: ModelSpec, encoding: EncodingSettings, *, artifact_dir: Path | None = None) -> PairScorer:
    """The cross-encoder a spec names (a registry name, a folder or a hub id), with every encoding option; on the
    first device of a multi-device ``--device`` (reranking k candidates per query is a small share of a run)."""
    named = ADAPTERS.get(spec.adapter)
    entry = named if named is not None and named.kind == "pairs" else adapter("cross-encoder")  # a folder says "hf"
    first_device = encoding.device.split(",")[0].strip()
    return _builder(entry)(spec, _on_device(encoding, first_device), artifact_dir=artifact_dir)


def load_encoder(
    spec: ModelSpec,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    runtime: str = "auto",
    artifact_dir: Path | None = None,
) -> Encoder | TextEncoder | LexicalRetriever:
    """The first entry point, kept for its callers: :func:`build_encoder` with the options as keywords."""
    return build_encoder(spec, Encoding(device, precision, runtime), artifact_dir=artifact_dir)


def bm25_retriever(spec: ModelSpec, encoding: EncodingSettings, *, artifact_dir: Path | None = None) -> Any:
    """BM25 ranks texts itself: no device, precision or runtime applies (its settings are its fingerprint)."""
    from evalkit.retrievers import LEXICAL_CAPABILITIES
    from evalkit.retrievers.bm25 import BM25Retriever

    retriever = BM25Retriever(spec.name)
    retriever.capabilities = LEXICAL_CAPABILITIES  # type: ignore[attr-defined] # until BM25Retriever declares it
    return retriever


def _builder(entry: Adapter) -> Any:
    target = entry.load()
    return target.from_spec if isinstance(target, type) else target


def _on_device(encoding: EncodingSettings, device: str) -> Encoding:
    return Encoding(device=device, precision=encoding.precision, runtime=encoding.runtime)


__all__ = [
    "ADAPTERS",
    "Adapter",
    "Encoding",
    "EncodingSettings",
    "adapter",
    "bm25_retriever",
    "build_encoder",
    "build_pair_scorer",
    "load_encoder",
    "register",
]
