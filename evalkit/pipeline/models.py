"""Every model a run builds — the model under test, a hybrid's sparse model, a reranker, the Ray backend's
replicas — built from one set of encoding options, and the run's retriever over them, checked against each other
in one place (:mod:`evalkit.search.build`).

The folder the run writes to is named here too: the model's revision (or a weights fingerprint), and, for a run
whose options change scores (overrides, retrieval, a second model, a reranker, reduced precision), mteb's
``experiment_kwargs`` naming each change: such a run is an experiment of that revision
(``<revision>/experiments/<name>/``, :mod:`evalkit.results.layout`), never mistaken for the model's own results.
In reduced precision the runtime that computed the vectors is one of those changes when it is not torch; for
``--runtime auto`` it is known only once the run's first texts were encoded (the probe measures on them), so the
name is complete from then on (:meth:`RunModels.vector_runtime`).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from evalkit import preflight
from evalkit.cache import EmbeddingCache
from evalkit.core import EmbeddingCore
from evalkit.encoders import build_encoder, build_pair_scorer
from evalkit.errors import EvalkitError
from evalkit.loaders.weights_files import require_safetensors
from evalkit.options import RunOptions
from evalkit.pipeline.warm import LazyEncoder, build_lazily, resolve_remembered
from evalkit.registry.models import WEIGHTLESS_ADAPTERS, ModelSpec, resolve_model
from evalkit.results.layout import experiment_kwargs, experiment_name, runtime_entry
from evalkit.search.build import build_retriever, check_task, is_lexical
from evalkit.search.rerank import RerankStage
from evalkit.search.retriever import Retriever
from evalkit.search.stages import DistributedSearch

SAFETENSORS_ADAPTERS = ("hf", "splade", "bge-m3", "cross-encoder")  # their encoders read model.safetensors only


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
    revision: str  # the model's revision folder (an experiment lies inside it)
    retrieval: Any  # evalkit.search.fusion.RetrievalSettings, checked against the models' outputs
    sparse_model: Any | None  # a hybrid's second model: a sparse encoder (SPLADE) or BM25
    rerank: RerankStage | None
    distributed: DistributedSearch | None
    retriever: Retriever  # what Retrieval and AnswerRetrieval tasks search with, built once for the run
    settings_changes: dict[str, Any] | None = None  # what the options change from the model's own settings (mteb's)
    precision: str = "fp32"
    requested_runtime: str = "torch"  # --runtime as given (auto: chosen at the first encode)

    @property
    def experiment_kwargs(self) -> dict[str, Any] | None:
        """What the run changes from the model's own settings (mteb's ``experiment_kwargs``): the options' changes
        and, in reduced precision, the runtime that computed the vectors when it is not torch."""
        if self.precision == "fp32":  # every runtime reproduces torch: never asked (auto would probe)
            return self.settings_changes
        return {**(self.settings_changes or {}), **runtime_entry(self.precision, self.vector_runtime())} or None

    @property
    def experiment(self) -> str | None:
        """The experiment's folder name (mteb's serialisation of ``experiment_kwargs``); None: the model's own run."""
        return experiment_name(self.experiment_kwargs)

    def vector_runtime(self) -> str | None:
        """The runtime whose vectors the run scores, as the run record names it; None while ``--runtime auto`` has
        not chosen one: it probes on the run's first texts, and asked before them it would probe on none. A warm
        run's choice is remembered (:mod:`evalkit.pipeline.warm`): asking builds nothing."""
        texts_seen = self.core.stats.get("encoded", 0) + self.core.stats.get("cached", 0) > 0
        remembered = isinstance(self.encoder, LazyEncoder) and not self.encoder.built
        chosen_for_workers = self.distributed is not None  # the Ray backend asked at build, for its workers
        if self.requested_runtime == "auto" and not (texts_seen or remembered or chosen_for_workers):
            return None
        return recorded_runtime(self.encoder)

    def check_task(self, task_name: str, task_type: str) -> None:
        """Whether these models can score a task of this type (BM25 and a reranker: Retrieval only, ...)."""
        check_task(
            task_name, task_type, encoder=self.encoder, settings=self.retrieval, reranked=self.rerank is not None
        )

    def fingerprint(self) -> dict[str, Any]:
        """The model's fingerprint for the run record (``{"cached": False}`` for a model that has none)."""
        return _fingerprint_of(self.encoder) or {"model": self.model.name, "cached": False}

    def settings_record(self, options: RunOptions) -> dict[str, Any]:
        """The run record's ``run_settings``: the options as they took effect."""
        return {
            "batch_size": options.encoding.batch_size,
            "token_budget": self.core.token_budget,
            "device": options.encoding.device,
            "precision": options.encoding.precision,
            "runtime": recorded_runtime(self.encoder),  # the one the experiment's folder names (reduced precision)
            "runtime_choice": getattr(self.encoder, "runtime_choice", None),  # which runtime ran and why
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
    spec, settings_tag = options.overrides.apply(resolve_remembered(model, resolve_model))
    preflight.check_model_name(spec.name)
    if spec.adapter == "openai-api" and spec.api_base_url:  # where the API key would go: checked before any data
        from evalkit.encoders.remote_api import check_endpoint

        check_endpoint(spec.api_base_url)
    if spec.adapter not in WEIGHTLESS_ADAPTERS:
        overridden = options.overrides.max_length is not None
        preflight.check_max_length(spec.max_length, spec.local_path, overridden=overridden)
    if spec.adapter in SAFETENSORS_ADAPTERS and spec.local_path is not None and spec.local_path.is_dir():
        require_safetensors(spec.local_path)  # the encoder is built at its first encode: refused before any work
    return spec, settings_tag


def scratch_dir() -> Path:
    """A folder for derived artefacts (an ONNX export) when the cache is off; removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="evalkit-artifacts-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def results_revision(model: ModelSpec, encoder: Any) -> str:
    """The revision folder: the pinned revision, or a fingerprint of the weights (a local folder, a model object)."""
    if model.revision:
        return model.revision
    fingerprint = _fingerprint_of(encoder)
    if model.source == "object" and fingerprint.get("revision"):
        return str(fingerprint["revision"])  # the revision= the caller named the object's weights by
    weights = str(fingerprint.get("weights_sha256", ""))
    return f"local-{weights[:12]}" if weights else "no_revision_available"


def recorded_runtime(encoder: Any) -> str | None:
    """The runtime the run record names: the fingerprint's (what keys the cache), else the encoder's, else torch."""
    runtime = _fingerprint_of(encoder).get("runtime")
    return runtime if runtime is not None else getattr(encoder, "runtime", "torch")


def _fingerprint_of(encoder: Any) -> dict[str, Any]:
    """The encoder's fingerprint, or an empty one for a model that has none (an opaque callable: never cached)."""
    from evalkit.encoders.protocol import capabilities_of

    return dict(encoder.fingerprint()) if capabilities_of(encoder).cacheable else {}


def build_models(
    model: ModelSpec,
    settings_tag: str,
    options: RunOptions,
    tasks: Sequence[tuple[str, str]] = (),
    *,
    encoder: Any = None,
    reranker: Any = None,
) -> RunModels:
    """Every model of the run from one set of options, their combination checked, and the revision folder.

    ``tasks`` (name, type) are checked against the models here, before the first vector of the run. ``encoder``
    and ``reranker``: models already built (objects a Python caller handed in) instead of ones ``model`` and
    ``--reranker`` name."""
    cache = EmbeddingCache(options.cache.cache_dir) if options.cache.use_cache else None
    artifact_dir = cache.root if cache is not None else scratch_dir()
    encoding = options.encoding
    if encoder is None:  # built when a text misses the cache (evalkit/pipeline/warm.py)
        build = partial(build_encoder, model, encoding, artifact_dir=artifact_dir)
        encoder = build_lazily(model, encoding, build, artifact_dir=artifact_dir)
    core = EmbeddingCore(
        token_budget=encoding.token_budget or default_token_budget(encoding.device, encoding.precision),
        batch_size=encoding.batch_size,
        show_progress=options.output.show_progress,
        cache=cache,
    )
    sparse_model = _sparse_model(options, encoder, artifact_dir)
    rerank = _rerank_stage(options, reranker, artifact_dir)
    distributed = _distributed_backend(options, model, encoder, core, artifact_dir)
    retriever, retrieval = build_retriever(
        options.retrieval.settings(),
        encoder,
        core,
        search_backend=options.retrieval.search_backend,
        similarity=model.similarity,
        sparse_model=sparse_model,
        sparse_tag_name=options.retrieval.sparse_tag_name if sparse_model is not None else "",
        rerank=rerank,
        distributed=distributed,
    )
    revision = results_revision(model, encoder)
    changes = experiment_kwargs(settings_tag + retriever.describe()["tag"], encoding.precision)
    changes = _with_subset(changes, options.selection.subset)
    models = RunModels(
        model, encoder, core, cache, revision, retrieval, sparse_model, rerank, distributed, retriever, changes,
        precision=encoding.precision, requested_runtime=encoding.runtime,
    )  # fmt: skip
    for task_name, task_type in tasks:
        models.check_task(task_name, task_type)
    return models


def _with_subset(changes: dict[str, Any] | None, subsets: Sequence[str]) -> dict[str, Any] | None:
    """A run on quick subsets is an experiment named by them (``subset_<name>``): its scores are never filed where
    the full task's are (:mod:`evalkit.subsets`)."""
    if not subsets:
        return changes
    names = sorted(set(subsets))
    return {**(changes or {}), "subset": names[0] if len(names) == 1 else names}


def _sparse_model(options: RunOptions, encoder: Any, artifact_dir: Path) -> Any | None:
    """The second model of a two-model hybrid (checked with the rest in :func:`evalkit.search.build.check_models`);
    not built at all when the main model ranks texts itself, which the checks refuse."""
    name = options.retrieval.sparse_model
    if not name or is_lexical(encoder):
        return name or None
    return build_encoder(resolve_model(name), options.encoding, artifact_dir=artifact_dir)


def _rerank_stage(options: RunOptions, reranker: Any, artifact_dir: Path) -> RerankStage | None:
    """The cross-encoder stage, built with every encoding option of the run like every other model."""
    if reranker is None and not options.rerank.reranker:
        return None
    if reranker is None:
        spec = resolve_model(options.rerank.reranker)
        reranker = build_pair_scorer(spec, options.encoding, artifact_dir=artifact_dir)
    return RerankStage(model=reranker, top_k=options.rerank.rerank_top_k)


def _distributed_backend(
    options: RunOptions, model: ModelSpec, encoder: Any, core: EmbeddingCore, artifact_dir: Path
) -> DistributedSearch | None:
    """The Ray backend of ``--backend ray``, its workers set up to rebuild this run's encoder exactly."""
    backend_options = options.backend
    if backend_options.backend == "local":
        return None
    if is_lexical(encoder):
        return backend_options.backend  # refused by the checks, before a cluster is started
    from evalkit.distributed.ray_backend import RayBackend, encoder_settings

    if model.source == "object":
        raise EvalkitError("--backend ray rebuilds the model on its workers: name the model, do not pass an object")
    store = backend_options.shard_dir or str(artifact_dir / "shards")
    backend = RayBackend(
        store_url=store,
        address=backend_options.ray_address,
        workers=backend_options.ray_workers,
        shard_size=backend_options.shard_size,
        show_progress=options.output.show_progress,
    )
    runtime = getattr(encoder, "runtime", None)  # auto as the driver resolved it: workers run the same runtime
    backend.settings = encoder_settings(
        model, encoder, core, options.encoding, runtime=runtime, artifact_dir=artifact_dir
    )
    return backend
