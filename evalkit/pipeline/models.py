"""Every model a run builds — the model under test, a hybrid's sparse model, a reranker, the Ray backend's
replicas — built from one set of encoding options and checked against each other in one place.

The revision folder the run writes to is named here too: the model's revision (or a weights fingerprint), then a
tag for each option that changes scores (overrides, retrieval, a second model, a reranker, reduced precision), so
a run with other settings never overwrites the model's own results.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit import preflight
from evalkit.cache import EmbeddingCache
from evalkit.core import EmbeddingCore
from evalkit.core.embed import encoder_outputs
from evalkit.encoders import load_encoder
from evalkit.encoders.protocol import Encoder
from evalkit.errors import EvalkitError
from evalkit.evaluators.retrieval import DistributedSearch, SparseModel
from evalkit.options import EncodingOptions, RunOptions
from evalkit.registry.models import WEIGHTLESS_ADAPTERS, ModelSpec, resolve_model
from evalkit.retrievers import LexicalRetriever
from evalkit.search.rerank import RerankStage


def default_token_budget(device: str, precision: str = "fp32") -> int:
    """Measured on a 2-core CPU with all-MiniLM-L6-v2 (SciFact documents): 3-4k padded tokens per pass beat smaller
    and larger batches in fp32 (cache-sized matrix products) and in bf16 (4096: 18.4-18.8 s, 8192: 20.5-22.2 s,
    16384: 23.1 s, fixed 32 texts: 22.3-22.9 s for 1,500 documents, one process, alternated); a GPU wants large
    batches."""
    if device != "cpu":
        return 65536
    return 4096


@dataclass(frozen=True)
class RunModels:
    """What a run evaluates with, built and checked: passed whole to each task."""

    model: ModelSpec  # the model's settings after the run's overrides
    encoder: Any  # an Encoder, or a LexicalRetriever (BM25) that ranks texts itself
    core: EmbeddingCore
    cache: EmbeddingCache | None
    revision: str  # the revision folder, tags included
    retrieval: Any  # evalkit.search.fusion.RetrievalSettings, checked against the models' outputs
    sparse_model: SparseModel | None
    rerank: RerankStage | None
    distributed: DistributedSearch | None

    def settings_record(self, options: RunOptions) -> dict[str, Any]:
        """The run record's ``run_settings``: the options as they took effect."""
        return {
            "batch_size": options.encoding.batch_size,
            "token_budget": self.core.token_budget,
            "device": options.encoding.device,
            "precision": options.encoding.precision,
            "runtime": getattr(self.encoder, "runtime", "torch"),
            "search_backend": options.retrieval.search_backend,
            "retrieval": self.retrieval.record(),
            "rerank": self.rerank.record() if self.rerank is not None else None,
            "sparse_model": self.sparse_model.fingerprint() if self.sparse_model is not None else None,
            "backend": self.distributed.record() if self.distributed is not None else {"backend": "local"},
            "model_overrides": options.overrides.record(),
            "cache": str(self.cache.store) if self.cache is not None else None,
            "embedding_stats": dict(self.core.stats),
        }


def resolve_run_model(model: str, options: RunOptions) -> tuple[ModelSpec, str]:
    """The model's spec with the run's overrides and their tag, checked before any data is loaded."""
    spec, settings_tag = options.overrides.apply(resolve_model(model))
    preflight.check_model_name(spec.name)
    if spec.adapter == "openai-api" and spec.api_base_url:  # where the API key would go: checked before any data
        from evalkit.encoders.remote_api import check_endpoint

        check_endpoint(spec.api_base_url)
    if spec.adapter not in WEIGHTLESS_ADAPTERS:
        overridden = options.overrides.max_length is not None
        preflight.check_max_length(spec.max_length, spec.local_path, overridden=overridden)
    return spec, settings_tag


def build_encoder(spec: ModelSpec, encoding: EncodingOptions, artifact_dir: Path) -> Encoder | LexicalRetriever:
    """One model from the run's encoding options: every model of a run is built here, so none misses one."""
    return load_encoder(
        spec, device=encoding.device, precision=encoding.precision, runtime=encoding.runtime, artifact_dir=artifact_dir
    )


def scratch_dir() -> Path:
    """A folder for derived artefacts (an ONNX export) when the cache is off; removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="evalkit-artifacts-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def results_revision(model: ModelSpec, encoder: Any) -> str:
    """The revision folder: the pinned revision, or a weights fingerprint for a local folder."""
    if model.revision:
        return model.revision
    weights = str(encoder.fingerprint().get("weights_sha256", ""))
    return f"local-{weights[:12]}" if weights else "no_revision_available"


def build_models(model: ModelSpec, settings_tag: str, options: RunOptions) -> RunModels:
    """Every model of the run from one set of options, their combination checked, and the revision folder."""
    cache = EmbeddingCache(options.cache.cache_dir) if options.cache.use_cache else None
    artifact_dir = cache.root if cache is not None else scratch_dir()
    encoding = options.encoding
    encoder = build_encoder(model, encoding, artifact_dir)
    core = EmbeddingCore(
        token_budget=encoding.token_budget or default_token_budget(encoding.device, encoding.precision),
        batch_size=encoding.batch_size,
        show_progress=options.output.show_progress,
        cache=cache,
    )
    sparse_model = _sparse_model(options, encoder, artifact_dir)
    outputs = tuple(encoder_outputs(encoder))
    if sparse_model is not None and "sparse" not in outputs:
        outputs += ("sparse",)
    retrieval = options.retrieval.settings().for_encoder(outputs)
    rerank = _rerank_stage(options)
    distributed = _distributed_backend(options, model, encoder, core, cache)
    revision = results_revision(model, encoder) + settings_tag + options.retrieval.tag_for(retrieval)
    if rerank is not None:
        revision += rerank.tag()
    revision += encoding.tag()
    return RunModels(model, encoder, core, cache, revision, retrieval, sparse_model, rerank, distributed)


def _sparse_model(options: RunOptions, encoder: Any, artifact_dir: Path) -> SparseModel | None:
    """The second model of a two-model hybrid, checked: it gives sparse vectors (the section checked the mode)."""
    name = options.retrieval.sparse_model
    if not name:
        return None
    if isinstance(encoder, LexicalRetriever):
        raise EvalkitError(f"{encoder.name} ranks texts itself; a hybrid needs a vector model as --model")
    spec = resolve_model(name)
    model = build_encoder(spec, options.encoding, artifact_dir)
    if isinstance(model, LexicalRetriever):
        if not hasattr(model, "sparse_rows"):
            raise EvalkitError(f"{spec.name} has no sparse form to fuse", field="sparse_model")
        return model  # type: ignore[return-value]
    if "sparse" not in encoder_outputs(model):
        raise EvalkitError(
            f"--sparse-model {spec.name} gives {', '.join(encoder_outputs(model))} vectors, not sparse ones",
            field="sparse_model",
        )
    return model  # type: ignore[return-value]


def _rerank_stage(options: RunOptions) -> RerankStage | None:
    """The cross-encoder stage, built with the run's device and precision like every other model."""
    if not options.rerank.reranker:
        return None
    from evalkit.encoders.cross_encoder import CrossEncoderReranker

    encoding = options.encoding
    model = CrossEncoderReranker(
        resolve_model(options.rerank.reranker), device=encoding.device.split(",")[0], precision=encoding.precision
    )
    return RerankStage(model=model, top_k=options.rerank.rerank_top_k)


def _distributed_backend(
    options: RunOptions, model: ModelSpec, encoder: Any, core: EmbeddingCore, cache: EmbeddingCache | None
) -> DistributedSearch | None:
    """The Ray backend of ``--backend ray``, its workers set up to rebuild this run's encoder exactly."""
    backend_options = options.backend
    if backend_options.backend == "local":
        return None
    if isinstance(encoder, LexicalRetriever):
        raise EvalkitError(f"{encoder.name} ranks texts itself; --backend ray shards a vector model's corpus")
    from evalkit.distributed.ray_backend import RayBackend, encoder_settings

    store = backend_options.shard_dir or str((cache.root if cache is not None else scratch_dir()) / "shards")
    backend = RayBackend(
        store_url=store,
        address=backend_options.ray_address,
        workers=backend_options.ray_workers,
        shard_size=backend_options.shard_size,
        show_progress=options.output.show_progress,
    )
    encoding = options.encoding
    backend.settings = encoder_settings(
        model, encoder, core, device=encoding.device, precision=encoding.precision, runtime=encoding.runtime
    )
    return backend
