"""``evalkit run`` as a library call: registry → loader → encoder core → evaluator → results.

All inputs are resolved and every task's data is loaded and validated before the first vector is computed, so
bad input fails fast and leaves nothing half-written.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit import preflight
from evalkit.cache import EmbeddingCache
from evalkit.core import EmbeddingCore
from evalkit.core.embed import encoder_outputs
from evalkit.encoders import load_encoder
from evalkit.encoders.prompts import TaskPrompts
from evalkit.encoders.protocol import Encoder
from evalkit.errors import EvalkitError, MissingDataError
from evalkit.evaluators import EVALUATED_TYPES, OWN_EVALUATORS, check_split_type
from evalkit.evaluators.answer_retrieval import evaluate_answer_retrieval_task
from evalkit.evaluators.mteb_native import MtebEncoderAdapter, evaluate_with_mteb
from evalkit.evaluators.outcome import SplitOutcome, TaskOutcome
from evalkit.evaluators.retrieval import DistributedSearch, SparseModel, evaluate_retrieval
from evalkit.evaluators.sts import evaluate_sts
from evalkit.loaders import load_task_data
from evalkit.records import PairSplit, RetrievalSplit, TaskData
from evalkit.registry.models import POOLINGS, WEIGHTLESS_ADAPTERS, ModelSpec, resolve_model
from evalkit.registry.tasks import (
    MTEB_NATIVE_TYPES,
    TaskRegistry,
    TaskSpec,
    builtin_tasks_dir,
    default_registry,
    mteb_task_for,
)
from evalkit.results.atomic import write_json, write_jsonl_gz
from evalkit.results.layout import ResultsLayout
from evalkit.results.run_record import run_record
from evalkit.results.task_result import mteb_task_result, per_item_rows, write_aggregate_result
from evalkit.retrievers import LexicalRetriever
from evalkit.safe_paths import safe_component
from evalkit.search.dense import SearchBackend
from evalkit.search.fusion import CANDIDATES, DENSE_RETRIEVAL, RetrievalSettings
from evalkit.search.rerank import RerankStage

BACKENDS: tuple[str, ...] = ("local", "ray")


def default_data_dirs() -> list[Path]:
    """``EVALKIT_DATA_DIR`` (``os.pathsep``-separated), else ``../shared/data/tasks`` beside the project."""
    configured = os.environ.get("EVALKIT_DATA_DIR")
    if configured:
        return [Path(p) for p in configured.split(os.pathsep) if p]
    for candidate in (
        Path.cwd() / "../shared/data/tasks",
        builtin_tasks_dir().parent / "../shared/data/tasks",
    ):
        if candidate.is_dir():
            return [candidate.resolve()]
    return []


def default_token_budget(device: str, precision: str = "fp32") -> int:
    """Measured on a 2-core CPU with all-MiniLM-L6-v2 (SciFact documents): 3-4k padded tokens per pass beat smaller
    and larger batches in fp32 (cache-sized matrix products) and in bf16 (4096: 18.4-18.8 s, 8192: 20.5-22.2 s,
    16384: 23.1 s, fixed 32 texts: 22.3-22.9 s for 1,500 documents, one process, alternated); a GPU wants large
    batches."""
    if device != "cpu":
        return 65536
    return 4096


@dataclass
class RunConfig:
    model: str
    tasks: Sequence[str] = ()
    benchmark: str | None = None
    languages: Sequence[str] = ()  # keep only subsets in these languages (eng or eng-Latn)
    data_dirs: Sequence[Path] = field(default_factory=default_data_dirs)
    output_dir: Path = Path("results")
    batch_size: int | None = None  # fixed-count batches; None: batches by token budget
    token_budget: int | None = None  # None: the device's default (see default_token_budget)
    device: str = "cpu"
    precision: str = "fp32"
    runtime: str = "auto"  # torch, onnx (ONNX Runtime, fp32 CPU), or auto: onnx where it fits and is installed
    model_overrides: Mapping[str, Any] = field(default_factory=dict)  # see apply_model_overrides
    reranker: str | None = None  # a cross-encoder rescoring each query's first-stage top rerank_top_k
    rerank_top_k: int = 100
    search_backend: SearchBackend = "numpy"  # exact top-k: our chunked numpy search, or faiss (identical rankings)
    retrieval: str = "dense"  # dense, sparse, colbert (MaxSim rerank of dense candidates) or hybrid
    weights: Mapping[str, float] = field(default_factory=dict)  # hybrid: weight per retriever; empty: BGE-M3's
    fusion: str = "weighted"  # hybrid: weighted sum of scores, or rrf (reciprocal rank fusion, k=60)
    candidates: int = CANDIDATES  # colbert and hybrid: first-stage depth per query
    normalization: str = "none"  # weighted hybrid: none (raw, BGE-M3's), min-max or zmuv per query (ranx's)
    sparse_model: str | None = None  # hybrid: a second model's sparse retriever (bm25, a SPLADE) in place of ours
    backend: str = "local"  # local, or ray: corpus encoding and search sharded over a Ray cluster
    ray_address: str | None = None  # ray: a running cluster (host:port, or "auto"); None starts a local one
    shard_dir: str | None = None  # ray: the shard store, a folder or fsspec URL all workers reach (default: cache)
    shard_size: int = 1024  # ray: texts per shard
    ray_workers: int | None = None  # ray: model replicas (default: one per GPU, else one per CPU)
    use_cache: bool = True
    cache_dir: Path | None = None  # None: $EVALKIT_CACHE_DIR, else ~/.cache/evalkit
    allow_hub: bool = True
    show_progress: bool = True
    command: list[str] | None = None


@dataclass(frozen=True)
class WrittenTask:
    """A task's result as written: where, and its scores, for the caller's summary."""

    spec: TaskSpec
    result_file: Path
    outcome: TaskOutcome


@dataclass(frozen=True)
class SkippedTask:
    """A task a run could not evaluate, and why (its data was found nowhere, or no subset was in the languages)."""

    name: str
    reason: str


@dataclass(frozen=True)
class RunSummary:
    written: list[WrittenTask]
    skipped: list[SkippedTask]
    embedding_stats: dict[str, int] = field(default_factory=dict)  # texts encoded vs read from the cache
    cache: EmbeddingCache | None = None

    @property
    def complete(self) -> bool:
        return not self.skipped


OVERRIDABLE = ("pooling", "max_length", "normalize", "query_instruction")


def apply_model_overrides(model: ModelSpec, overrides: Mapping[str, Any]) -> tuple[ModelSpec, str]:
    """The model with its settings overridden for an ablation, and the tag its results folder gets.

    The tag (``+pooling-cls+max_length-128``) names each setting that differs from the model's own, so runs with
    different settings land in different revision folders and never overwrite the model's faithful results.
    ``query_instruction`` replaces every query prompt the model has (document prompts are kept).
    """
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise EvalkitError(f"unknown model setting(s): {', '.join(unknown)}", field=unknown[0])
    changes: dict[str, Any] = {}
    tags: list[str] = []
    for name in OVERRIDABLE:
        if name not in overrides or overrides[name] is None:
            continue
        value = overrides[name]
        if name == "pooling" and value not in POOLINGS:
            raise EvalkitError(f"pooling must be one of {', '.join(POOLINGS)}, got '{value}'", field="pooling")
        if name == "max_length" and (not isinstance(value, int) or value < 1):
            raise EvalkitError(f"max_length must be a positive integer, got {value!r}", field="max_length")
        if name == "query_instruction":
            prompts = {
                (key if key == "document" or key.endswith("-document") else f"{key}-document"): text
                for key, text in model.prompts.items()
                if key != "query" and not key.endswith("-query")
            }
            prompts["query"] = str(value)
            if prompts != model.prompts:
                changes["prompts"] = prompts
                digest = hashlib.sha256(str(value).encode()).hexdigest()[:8]
                tags.append(f"+query_instruction-{digest}")
            continue
        if getattr(model, name) != value:
            changes[name] = value
            shown = {True: "on", False: "off"}.get(value, value) if name == "normalize" else value
            tags.append(f"+{name}-{shown}")
    return (replace(model, **changes) if changes else model), "".join(tags)


def _rerank_stage(config: RunConfig) -> RerankStage | None:
    if not config.reranker:
        return None
    if config.rerank_top_k < 1:
        raise EvalkitError(f"--rerank-top-k must be positive, got {config.rerank_top_k}", field="rerank_top_k")
    from evalkit.encoders.cross_encoder import CrossEncoderReranker

    model = CrossEncoderReranker(resolve_model(config.reranker), device=config.device.split(",")[0])
    return RerankStage(model=model, top_k=config.rerank_top_k)


def _sparse_model(
    config: RunConfig, encoder: Encoder, retrieval: RetrievalSettings, artifact_dir: Path
) -> SparseModel | None:
    """The second model of a two-model hybrid, checked: it gives sparse vectors, and the run is a hybrid."""
    if not config.sparse_model:
        return None
    if retrieval.mode != "hybrid":
        raise EvalkitError("--sparse-model applies to --retrieval hybrid only", field="sparse_model")
    if isinstance(encoder, LexicalRetriever):
        raise EvalkitError(f"{encoder.name} ranks texts itself; a hybrid needs a vector model as --model")
    spec = resolve_model(config.sparse_model)
    model = load_encoder(
        spec, device=config.device, precision=config.precision, runtime=config.runtime, artifact_dir=artifact_dir
    )
    if isinstance(model, LexicalRetriever):
        if not hasattr(model, "sparse_rows"):
            raise EvalkitError(f"{spec.name} has no sparse form to fuse", field="sparse_model")
        return model
    if "sparse" not in encoder_outputs(model):
        raise EvalkitError(
            f"--sparse-model {spec.name} gives {', '.join(encoder_outputs(model))} vectors, not sparse ones",
            field="sparse_model",
        )
    return model


def _check_backend(config: RunConfig) -> None:
    if config.backend not in BACKENDS:
        raise EvalkitError(f"backend must be one of {', '.join(BACKENDS)}, got {config.backend!r}", field="backend")
    if config.backend == "local":
        return
    if config.retrieval != "dense" or config.sparse_model or config.reranker:
        raise EvalkitError("--backend ray runs dense retrieval (no --retrieval, --sparse-model or --reranker yet)")
    if config.shard_size < 1:
        raise EvalkitError(f"--shard-size must be positive, got {config.shard_size}", field="shard_size")
    if config.ray_workers is not None and config.ray_workers < 1:
        raise EvalkitError(f"--ray-workers must be positive, got {config.ray_workers}", field="ray_workers")


def _distributed_backend(
    config: RunConfig,
    model: ModelSpec,
    encoder: Encoder,
    core: EmbeddingCore,
    cache: EmbeddingCache | None,
) -> DistributedSearch | None:
    """The Ray backend of ``--backend ray``, its workers set up to rebuild this run's encoder exactly."""
    if config.backend == "local":
        return None
    if isinstance(encoder, LexicalRetriever):
        raise EvalkitError(f"{encoder.name} ranks texts itself; --backend ray shards a vector model's corpus")
    from evalkit.distributed.ray_backend import RayBackend, encoder_settings

    store = config.shard_dir or str((cache.root if cache is not None else _scratch_dir()) / "shards")
    backend = RayBackend(
        store_url=store,
        address=config.ray_address,
        workers=config.ray_workers,
        shard_size=config.shard_size,
        show_progress=config.show_progress,
    )
    backend.settings = encoder_settings(
        model, encoder, core, device=config.device, precision=config.precision, runtime=config.runtime
    )
    return backend


def _scratch_dir() -> Path:
    """A folder for derived artefacts (an ONNX export) when the cache is off; removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="evalkit-artifacts-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def results_revision(model: ModelSpec, encoder: Encoder) -> str:
    """The revision folder: the pinned revision, or a weights fingerprint for a local folder."""
    if model.revision:
        return model.revision
    weights = str(encoder.fingerprint().get("weights_sha256", ""))
    return f"local-{weights[:12]}" if weights else "no_revision_available"


@dataclass(frozen=True)
class RunPlan:
    """What a run evaluates: task specs, tasks skipped up front, and aggregates to combine after their members."""

    specs: list[TaskSpec]
    skipped: list[SkippedTask]
    aggregates: dict[str, tuple[Any, tuple[str, ...]]]  # name → (mteb aggregate task, member task names)


def plan_run(config: RunConfig, registry: TaskRegistry) -> RunPlan:
    """The named tasks, then the benchmark's, each restricted to the benchmark's splits and subsets."""
    specs = [registry.get(name) for name in config.tasks]
    skipped: list[SkippedTask] = []
    aggregates: dict[str, tuple[Any, tuple[str, ...]]] = {}
    if config.benchmark is not None:
        from evalkit.registry.benchmarks import get_benchmark

        bench = get_benchmark(config.benchmark)
        skipped += [SkippedTask(name, f"not in mteb: {why}") for name, (_, why) in bench.not_in_mteb.items()]
        for task in bench.mteb_tasks():
            name = task.metadata.name
            if name in bench.aggregates:  # CQADupStack: run its forums, then combine them as mteb does
                members = bench.member_tasks(name)
                aggregates[name] = (task, tuple(m.metadata.name for m in members))
                specs += [registry.get(m.metadata.name, mteb_task=m) for m in members]
            else:
                specs.append(registry.get(name, mteb_task=task))
        specs += bench.spec_tasks.values()  # tasks only an evalkit spec defines (MKQA), restricted like the rest
    specs = list({spec.name: spec for spec in specs}.values())
    if not specs:
        raise EvalkitError("nothing to run: name tasks (--tasks) or a benchmark (--benchmark)")
    if config.languages:
        restricted = []
        for spec in specs:
            kept = spec.restricted_to_languages(config.languages)
            if kept.hf_subsets:
                restricted.append(kept)
            else:
                skipped.append(SkippedTask(spec.name, f"no subset in {', '.join(config.languages)}"))
        specs = restricted
    for spec in specs:
        if spec.type not in EVALUATED_TYPES:
            raise EvalkitError(
                f"task '{spec.name}' is of type {spec.type}, which this evalkit does not evaluate "
                f"(evaluated: {', '.join(EVALUATED_TYPES)})",
                file=spec.spec_file,
                field="type",
            )
    return RunPlan(specs=specs, skipped=skipped, aggregates=aggregates)


def _evaluate_own(
    spec: TaskSpec,
    data: TaskData,
    encoder: Encoder,
    core: EmbeddingCore,
    prompts: TaskPrompts,
    search_backend: SearchBackend = "numpy",
    retrieval: RetrievalSettings = DENSE_RETRIEVAL,
    rerank: RerankStage | None = None,
    sparse_model: SparseModel | None = None,
    distributed: DistributedSearch | None = None,
) -> list[SplitOutcome]:
    """Types evalkit scores itself, keeping per-query / per-pair values."""
    if isinstance(encoder, LexicalRetriever) and spec.type != "Retrieval":
        raise EvalkitError(f"{encoder.name} ranks documents; it cannot score task '{spec.name}' ({spec.type})")
    if rerank is not None and spec.type != "Retrieval":
        raise EvalkitError(f"--reranker applies to Retrieval tasks, not to '{spec.name}' ({spec.type})")
    if spec.type == "AnswerRetrieval":  # all languages search one corpus: encoded once per task, not per subset
        if retrieval.mode != "dense":
            raise EvalkitError(f"task '{spec.name}' ({spec.type}) is scored with dense retrieval only")
        return evaluate_answer_retrieval_task(
            data.splits,
            encoder,
            core,
            task_name=spec.name,
            eval_splits=spec.eval_splits,
            languages_of=spec.languages_of,
            main_score=spec.main_score,
            prompts=prompts,
            search_backend=search_backend,
        )
    outcomes: list[SplitOutcome] = []
    for hf_subset, splits in data.splits.items():
        corpus_vectors = {}  # splits of one subset that share a corpus encode it once
        for split_name in spec.eval_splits:
            split = splits[split_name]
            check_split_type(spec.type, split, spec.name)
            common = dict(
                split_name=split_name,
                hf_subset=hf_subset,
                languages=spec.languages_of(hf_subset),
                main_score=spec.main_score,
                prompts=prompts,
            )
            if isinstance(split, RetrievalSplit):
                outcome, corpus_vectors[id(split.corpus)] = evaluate_retrieval(
                    split,
                    encoder,
                    core,
                    remove_self_hits=spec.remove_self_hits,
                    corpus_vectors=corpus_vectors.get(id(split.corpus)),
                    search_backend=search_backend,
                    retrieval=retrieval,
                    rerank=rerank,
                    sparse_model=sparse_model,
                    distributed=distributed,
                    **common,
                )
            elif isinstance(split, PairSplit):
                outcome = evaluate_sts(split, encoder, core, score_range=spec.score_range, **common)
            else:
                outcome = OWN_EVALUATORS[spec.type](split, encoder, core, **common)
            outcomes.append(outcome)
    return outcomes


def evaluate_task(
    spec: TaskSpec,
    data: TaskData,
    encoder: Encoder,
    core: EmbeddingCore,
    *,
    model: ModelSpec,
    revision: str,
    search_backend: SearchBackend = "numpy",
    retrieval: RetrievalSettings = DENSE_RETRIEVAL,
    rerank: RerankStage | None = None,
    sparse_model: SparseModel | None = None,
    distributed: DistributedSearch | None = None,
) -> TaskOutcome:
    started = time.perf_counter()
    if spec.type in MTEB_NATIVE_TYPES:
        adapter = MtebEncoderAdapter(encoder, core, prompts=model.prompts, name=model.name, revision=revision)
        outcomes = evaluate_with_mteb(
            mteb_task_for(spec),
            data.splits,
            adapter,
            eval_splits=spec.eval_splits,
            languages_of=spec.languages_of,
            main_score=spec.main_score,
            batch_size=core.batch_size or 32,
        )
    else:
        prompts = TaskPrompts.resolve(model.prompts, task_name=spec.name, task_type=spec.type)
        outcomes = _evaluate_own(
            spec, data, encoder, core, prompts, search_backend, retrieval, rerank, sparse_model, distributed
        )
    return TaskOutcome(task_name=spec.name, splits=outcomes, evaluation_time_s=time.perf_counter() - started)


def _model_meta(model: ModelSpec, revision: str) -> dict[str, object]:
    """A ``model_meta.json`` with the fields mteb's result loader reads."""
    return {
        "name": model.name,
        "revision": revision,
        "release_date": None,
        "languages": list(model.languages) or None,
        "embed_dim": model.embedding_dim,
        "max_tokens": model.max_length,
        "similarity_fn_name": "cosine",
        "framework": ["evalkit", "PyTorch"],
        "loader": f"evalkit.{model.adapter}",
    }


def _load_all(
    specs: list[TaskSpec], config: RunConfig
) -> tuple[dict[str, TaskData], list[SkippedTask], list[MissingDataError]]:
    """Every task's data before any encoding: malformed data stops the run here, missing data skips the task."""
    loaded: dict[str, TaskData] = {}
    skipped: list[SkippedTask] = []
    errors: list[MissingDataError] = []
    for spec in specs:
        try:
            loaded[spec.name] = load_task_data(spec, config.data_dirs, allow_hub=config.allow_hub)
        except MissingDataError as err:
            skipped.append(SkippedTask(spec.name, str(err)))
            errors.append(err)
    return loaded, skipped, errors


def check_config(config: RunConfig) -> None:
    """Every check that needs neither data nor a model: run first, so a bad option fails in a second."""
    from evalkit.cache import default_cache_dir
    from evalkit.encoders.hf import PRECISIONS, RUNTIMES
    from evalkit.search.dense import SEARCH_BACKENDS
    from evalkit.search.fusion import FUSIONS, NORMALIZATIONS, RETRIEVALS

    for option, choices in (
        ("precision", PRECISIONS),
        ("runtime", RUNTIMES),
        ("search_backend", SEARCH_BACKENDS),
        ("retrieval", RETRIEVALS),
        ("fusion", FUSIONS),
        ("normalization", NORMALIZATIONS),
    ):
        preflight.check_choice(getattr(config, option), option, choices)
    for option in ("batch_size", "token_budget", "ray_workers"):
        preflight.check_positive(getattr(config, option), option)
    for option in ("rerank_top_k", "candidates", "shard_size"):
        preflight.check_positive(getattr(config, option), option, allow_none=False)
    _check_backend(config)
    preflight.check_device(config.device)
    preflight.check_writable_dir(config.output_dir, "output")
    if config.use_cache:
        preflight.check_writable_dir(Path(config.cache_dir or default_cache_dir()), "cache_dir")
    if config.sparse_model:
        safe_component(config.sparse_model.rstrip("/").rsplit("/", 1)[-1], what="--sparse-model name")


def run(config: RunConfig, registry: TaskRegistry | None = None) -> RunSummary:
    """Evaluate the model on every planned task whose data is found; the summary names the tasks skipped."""
    registry = registry or default_registry()
    check_config(config)
    plan = plan_run(config, registry)
    specs, skipped = plan.specs, list(plan.skipped)
    model, settings_tag = apply_model_overrides(resolve_model(config.model), config.model_overrides)
    preflight.check_model_name(model.name)
    if model.adapter == "openai-api" and model.api_base_url:  # where the API key would go: checked before any data
        from evalkit.encoders.remote_api import check_endpoint

        check_endpoint(model.api_base_url)
    if model.adapter not in WEIGHTLESS_ADAPTERS:
        overridden = config.model_overrides.get("max_length") is not None
        preflight.check_max_length(model.max_length, model.local_path, overridden=overridden)
    retrieval = RetrievalSettings(
        config.retrieval, dict(config.weights), config.fusion, config.candidates, normalization=config.normalization
    )
    datasets, missing, errors = _load_all(specs, config)
    skipped += missing
    if not datasets:
        if len(errors) == 1:
            raise errors[0]
        raise MissingDataError(f"no data for any of the {len(specs)} tasks: " + " | ".join(map(str, errors)))
    cache = EmbeddingCache(config.cache_dir) if config.use_cache else None
    artifact_dir = cache.root if cache is not None else _scratch_dir()
    encoder = load_encoder(
        model, device=config.device, precision=config.precision, runtime=config.runtime, artifact_dir=artifact_dir
    )
    core = EmbeddingCore(
        token_budget=config.token_budget or default_token_budget(config.device, config.precision),
        batch_size=config.batch_size,
        show_progress=config.show_progress,
        cache=cache,
    )
    revision = results_revision(model, encoder)
    sparse_model = _sparse_model(config, encoder, retrieval, artifact_dir)
    outputs = encoder_outputs(encoder)
    retrieval = retrieval.for_encoder(
        tuple(outputs) + (("sparse",) if sparse_model is not None and "sparse" not in outputs else ())
    )
    revision += settings_tag  # an ablation never overwrites the model's own results
    revision += retrieval.tag()  # nor does another retrieval (+retrieval-hybrid)
    if sparse_model is not None:  # nor a hybrid with another model's sparse retriever (+sparse-bm25)
        revision += f"+sparse-{config.sparse_model.rstrip('/').rsplit('/', 1)[-1]}"  # type: ignore[union-attr]
    rerank = _rerank_stage(config)
    backend = _distributed_backend(config, model, encoder, core, cache)
    if rerank is not None:
        revision += rerank.tag()
    if config.precision != "fp32":  # reduced-precision scores never overwrite the faithful fp32 ones
        revision = f"{revision}-{config.precision}"
    layout = ResultsLayout(config.output_dir, model.results_folder_name, revision)
    mteb_version = metadata.version("mteb")
    written = []
    for spec in (s for s in specs if s.name in datasets):
        started_at = dt.datetime.now(dt.timezone.utc)
        outcome = evaluate_task(
            spec,
            datasets[spec.name],
            encoder,
            core,
            model=model,
            revision=layout.revision,
            search_backend=config.search_backend,
            retrieval=retrieval,
            rerank=rerank,
            sparse_model=sparse_model,
            distributed=backend,
        )
        finished_at = dt.datetime.now(dt.timezone.utc)
        record = run_record(
            spec=spec,
            data=datasets[spec.name],
            outcome=outcome,
            model_fingerprint=encoder.fingerprint(),
            run_settings={
                "batch_size": config.batch_size,
                "token_budget": core.token_budget,
                "device": config.device,
                "precision": config.precision,
                "runtime": getattr(encoder, "runtime", "torch"),
                "search_backend": config.search_backend,
                "retrieval": retrieval.record(),
                "rerank": rerank.record() if rerank is not None else None,
                "sparse_model": sparse_model.fingerprint() if sparse_model is not None else None,
                "backend": backend.record() if backend is not None else {"backend": "local"},
                "model_overrides": dict(config.model_overrides),
                "cache": str(cache.store) if cache is not None else None,
                "embedding_stats": dict(core.stats),
            },
            started_at=started_at,
            finished_at=finished_at,
            command=config.command or sys.argv,
        )
        # Side files first, the TaskResult last: a result file present means its evidence is too.
        write_jsonl_gz(layout.per_item(spec.name), per_item_rows(outcome))
        write_json(layout.run_record(spec.name), record)
        write_json(layout.model_meta, _model_meta(model, layout.revision))
        write_json(
            layout.task_result(spec.name),
            mteb_task_result(spec, outcome, mteb_version=mteb_version, finished_at=finished_at),
        )
        written.append(WrittenTask(spec=spec, result_file=layout.task_result(spec.name), outcome=outcome))
    done = {w.spec.name for w in written}
    for aggregate_task, members in plan.aggregates.values():
        if set(members) <= done:
            write_aggregate_result(layout, aggregate_task, members)
    return RunSummary(written=written, skipped=skipped, embedding_stats=dict(core.stats), cache=cache)
