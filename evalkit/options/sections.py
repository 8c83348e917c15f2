"""The sections of a run's options. Each owns its flags, defaults, choices, checks, revision tag and record entry.

Adding an option: declare it on its section with :func:`evalkit.options.base.option` (the CLI flag and the
``evalkit.evaluate`` keyword follow), check it in ``validate``, tag and record it if it changes scores, and use it
where it acts. An option that changes vectors belongs to :class:`EncodingOptions`, which every model a run builds
receives whole (``evalkit.encoders.build_encoder``), so it reaches the cache key too. See docs/architecture.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.options.base import Section, check_positive, option
from evalkit.registry.st_folder import POOLING_MODES

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnx", "openvino")
POOLINGS: tuple[str, ...] = POOLING_MODES
"""sentence-transformers' pooling modes (evalkit.encoders.pooling.POOLING_MODES), each reproduced exactly."""
BACKENDS: tuple[str, ...] = ("local", "ray")
SEARCH_BACKENDS: tuple[str, ...] = ("numpy", "faiss")
RETRIEVALS: tuple[str, ...] = ("dense", "sparse", "colbert", "hybrid")
FUSIONS: tuple[str, ...] = ("weighted", "rrf")
NORMALIZATIONS: tuple[str, ...] = ("none", "min-max", "zmuv")


@dataclasses.dataclass(frozen=True)
class SelectionOptions(Section):
    """What a run evaluates and where its data comes from."""

    tasks: tuple[str, ...] = option(
        (), flags=("--tasks", "--task"), nargs="+", metavar="TASK", help="task names (see `evalkit tasks`)"
    )
    benchmark: str | None = option(help='a named benchmark, e.g. "MTEB(cmn, v1)" (alias C-MTEB), "MTEB(eng, v1)", BEIR')
    languages: tuple[str, ...] = option(
        (), flags=("--lang",), action="append", metavar="LANG", help="keep only subsets in this language; repeatable"
    )
    data_dirs: tuple[Path, ...] = option(
        (), flags=("--data-dir",), type=Path, action="append",
        help="local mirror holding <TaskName>/ folders (repeatable; default: $EVALKIT_DATA_DIR)",
    )  # fmt: skip
    allow_hub: bool = option(True, flags=("--no-hub",), action="store_false", help="never fall back to the hub")
    allow_missing: bool = option(
        False, action="store_true", help="exit 0 even when some tasks were skipped for missing data"
    )
    # a quick subset (`evalkit subset build`) replaces its task's data; the run is an mteb experiment (subset_<name>)
    subset: tuple[str, ...] = option(
        (), flags=("--subset",), action="append", metavar="NAME",
        help="evaluate the quick subset NAME instead of its full task (one per task; repeatable); without --tasks, "
        "the subsets' tasks are the run's",
    )  # fmt: skip
    subsets_dir: Path | None = option(  # noqa: RUF009 - option() is a dataclasses.field
        type=Path, metavar="DIR", help="where subset manifests are (default: $EVALKIT_SUBSETS_DIR, else ./subsets)"
    )

    @classmethod
    def convert(cls, name: str, value: Any) -> Any:
        if name in ("tasks", "languages", "subset"):
            return (value,) if isinstance(value, str) else tuple(value)
        if name == "data_dirs":
            return tuple(Path(p) for p in ([value] if isinstance(value, (str, Path)) else value))
        if name == "subsets_dir":
            return Path(value)
        return value

    def validate(self) -> None:
        from evalkit.subsets.manifest import check_name

        for name in self.subset:
            check_name(name, field="subset")


@dataclasses.dataclass(frozen=True)
class EncodingOptions(Section):
    """How vectors are computed. Every model a run builds gets all of these, and they are in its cache key."""

    title = "encoding"
    device: str = option("cpu", help="cpu, cuda, cuda:1, cuda:0,cuda:1 (one replica per GPU)")
    precision: str = option(
        "fp32", choices=PRECISIONS, help="fp32 (faithful, default); bf16 on CPUs that have it and GPUs; fp16 on GPUs"
    )
    runtime: str = option(
        "auto",
        choices=RUNTIMES,
        help="forward pass; auto times torch, ONNX Runtime (and OpenVINO if installed) here and keeps the fastest",
    )
    batch_size: int | None = option(type=int, help="fixed texts per batch instead of a token budget")
    token_budget: int | None = option(type=int, help="padded tokens per forward pass (default: CPU 4096; GPU 65536)")

    def validate(self) -> None:
        check_positive(self.batch_size, "batch_size")
        check_positive(self.token_budget, "token_budget")

    def check_environment(self) -> None:
        from evalkit.preflight import check_device

        check_device(self.device)


@dataclasses.dataclass(frozen=True)
class ModelOverrides(Section):
    """A model's own settings changed for an ablation; the run is an mteb experiment named by what changed."""

    title = "model settings (ablations: the run is filed as an mteb experiment, <revision>/experiments/<what changed>/)"
    pooling: str | None = option(choices=POOLINGS, help="override the model's pooling")
    max_length: int | None = option(type=int, help="override the model's maximum tokens per text")
    normalize: bool | None = option(action=argparse.BooleanOptionalAction, help="override L2 normalisation")
    query_instruction: str | None = option(metavar="TEXT", help="replace the model's query prompts with TEXT")

    def validate(self) -> None:
        if self.max_length is not None and (isinstance(self.max_length, bool) or not isinstance(self.max_length, int)
                                            or self.max_length < 1):  # fmt: skip
            raise EvalkitError(f"max_length must be a positive integer, got {self.max_length!r}", field="max_length")

    def apply(self, model: Any) -> tuple[Any, str]:
        """The model spec with these overrides, and the tag naming each setting that differs from its own."""
        changes: dict[str, Any] = {}
        tags: list[str] = []
        for name in ("pooling", "max_length", "normalize"):
            value = getattr(self, name)
            if value is not None and getattr(model, name) != value:
                changes[name] = value
                shown = {True: "on", False: "off"}.get(value, value) if name == "normalize" else value
                tags.append(f"+{name}-{shown}")
        if self.query_instruction is not None and getattr(model, "prompt_style", "prompts") == "instruct":
            raise EvalkitError(  # its queries get a per-task instruction through a template, not a named prompt
                f"--query-instruction replaces named prompts; {model.name} takes per-task instructions through "
                "its instruction template (mteb's instruct wrapper), which this option would not change",
                field="query_instruction",
            )
        if self.query_instruction is not None:
            prompts = {  # every query prompt replaced; document prompts kept
                (key if key == "document" or key.endswith("-document") else f"{key}-document"): text
                for key, text in model.prompts.items()
                if key != "query" and not key.endswith("-query")
            }
            prompts["query"] = str(self.query_instruction)
            if prompts != model.prompts:
                changes["prompts"] = prompts
                tags.append(f"+query_instruction-{hashlib.sha256(self.query_instruction.encode()).hexdigest()[:8]}")
        return (dataclasses.replace(model, **changes) if changes else model), "".join(tags)


@dataclasses.dataclass(frozen=True)
class RetrievalOptions(Section):
    """How a Retrieval task retrieves (a non-dense one is an mteb experiment: <revision>/experiments/retrieval_.../)."""

    title = "retrieval (a non-dense retrieval lands in <revision>/experiments/retrieval_.../)"
    retrieval: str = option(
        "dense", choices=RETRIEVALS,
        help="dense cosine (default); sparse term weights; colbert: MaxSim rerank of the dense candidates; hybrid",
    )  # fmt: skip
    weights: Mapping[str, float] = option(
        metavar="NAME=W,...", default_factory=dict,
        help="hybrid weights, e.g. dense=1,sparse=0.3,colbert=1 (BGE-M3's, the default); 0 leaves one out",
    )  # fmt: skip
    fusion: str = option("weighted", choices=FUSIONS, help="hybrid: weighted sum of scores, or reciprocal rank fusion")
    candidates: int = option(100, type=int, metavar="K", help="colbert and hybrid: first-stage depth (default 100)")
    normalization: str = option(
        "none", choices=NORMALIZATIONS, help="weighted hybrid: scores raw (default, BGE-M3's) or normalised as ranx"
    )
    sparse_model: str | None = option(
        metavar="MODEL", help="hybrid of two models: the sparse retriever from MODEL (bm25, a SPLADE), dense: --model"
    )
    search_backend: str = option(
        "numpy", choices=SEARCH_BACKENDS, help="exact top-k: evalkit's chunked search (default) or faiss IndexFlatIP"
    )

    @classmethod
    def convert(cls, name: str, value: Any) -> Any:
        if name == "weights" and isinstance(value, str):
            from evalkit.search.fusion import parse_weights

            return parse_weights(value)
        return dict(value) if name == "weights" else value

    def validate(self) -> None:
        check_positive(self.candidates, "candidates", allow_none=False)
        if self.sparse_model is not None:
            if self.retrieval != "hybrid":
                raise EvalkitError("--sparse-model applies to --retrieval hybrid only", field="sparse_model")
            from evalkit.safe_paths import safe_component

            safe_component(self.sparse_tag_name, what="--sparse-model name", field="sparse_model")

    @property
    def sparse_tag_name(self) -> str:
        return str(self.sparse_model).rstrip("/").rsplit("/", 1)[-1]

    def settings(self) -> Any:
        """The retrieval as the search layer takes it (:class:`evalkit.search.fusion.RetrievalSettings`)."""
        from evalkit.search.fusion import RetrievalSettings

        return RetrievalSettings(
            self.retrieval, dict(self.weights), self.fusion, self.candidates, normalization=self.normalization
        )

    def tag_for(self, settings: Any) -> str:
        """The tag of the settings as checked against the model (its effective weights), and of a second model."""
        return settings.tag() + (f"+sparse-{self.sparse_tag_name}" if self.sparse_model else "")


@dataclasses.dataclass(frozen=True)
class RerankOptions(Section):
    """A cross-encoder stage rescoring each query's first-stage top k."""

    title = "rerank"
    reranker: str | None = option(metavar="MODEL", help="a cross-encoder (bge-reranker style) rescoring the top k")
    rerank_top_k: int = option(100, type=int, help="candidates per query to rerank (default 100)")

    def validate(self) -> None:
        check_positive(self.rerank_top_k, "rerank_top_k", allow_none=False)


@dataclasses.dataclass(frozen=True)
class BackendOptions(Section):
    """Where the work runs: this process, or a Ray cluster (same vectors, same scores)."""

    title = "past one machine (pip install 'evalkit[ray]')"
    backend: str = option("local", choices=BACKENDS, help="ray: encode and search retrieval corpora in shards on Ray")
    ray_address: str | None = option(metavar="HOST:PORT", help="a running Ray cluster (default: start a local one)")
    shard_dir: str | None = option(metavar="URL", help="shard store every worker reaches: a folder or fsspec URL")
    shard_size: int = option(1024, type=int, metavar="N", help="texts per shard (default 1024)")
    ray_workers: int | None = option(type=int, metavar="N", help="model replicas (default: one per GPU or CPU)")

    def validate(self) -> None:
        check_positive(self.shard_size, "shard_size", allow_none=False)
        check_positive(self.ray_workers, "ray_workers")


@dataclasses.dataclass(frozen=True)
class CacheOptions(Section):
    """The embedding cache: vectors keyed by everything that changes them."""

    title = "cache"
    use_cache: bool = option(
        True, flags=("--no-cache",), action="store_false", help="neither read nor write the embedding cache"
    )
    cache_dir: Path | None = option(  # noqa: RUF009 - option() is a dataclasses.field
        type=Path, help="cache folder (default: $EVALKIT_CACHE_DIR, else ~/.cache/evalkit)"
    )

    def check_environment(self) -> None:
        from evalkit.cache.store import default_cache_dir
        from evalkit.preflight import check_writable_dir

        if self.use_cache:
            check_writable_dir(Path(self.cache_dir or default_cache_dir()), "cache_dir")


@dataclasses.dataclass(frozen=True)
class OutputOptions(Section):
    """Where results go and what the run prints."""

    output_dir: Path = option(  # noqa: RUF009 - option() is a dataclasses.field
        Path("results"), flags=("--output",), type=Path, help="results root (default: results)"
    )
    # --quiet hides the bars only: the one line per finished task on stderr (evalkit.progress) is what a CI log has
    show_progress: bool = option(
        True, flags=("--quiet",), action="store_false", help="no progress bars (the per-task lines on stderr stay)"
    )
    # the ranked lists are kept only when asked: a 1000-deep run of a large task is many times its result file
    save_run: bool = option(
        False,
        action="store_true",
        help="also write each retrieval query's ranked top k as a TREC run file beside the results (evalkit/*.trec)",
    )

    @classmethod
    def convert(cls, name: str, value: Any) -> Any:
        return Path(value) if name == "output_dir" else value

    def check_environment(self) -> None:
        from evalkit.preflight import check_writable_dir

        check_writable_dir(self.output_dir, "output")


SECTIONS: tuple[type[Section], ...] = (
    SelectionOptions,
    OutputOptions,
    EncodingOptions,
    ModelOverrides,
    RetrievalOptions,
    RerankOptions,
    BackendOptions,
    CacheOptions,
)


def section_of(name: str, sections: Sequence[type[Section]] = SECTIONS) -> type[Section] | None:
    return next((s for s in sections if name in s.names()), None)
