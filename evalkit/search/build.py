"""The run's retriever, built once from its models and retrieval settings — and every check of how they combine.

Each check is here, raised as one line before any text is encoded: a lexical model (BM25) ranks texts itself, so
it takes no other retrieval, no second model and no Ray backend, and scores Retrieval tasks only; ``--retrieval
colbert`` needs a ColBERT output (and so on for each mode's outputs); ``--sparse-model`` needs a hybrid and a model
with sparse output; the Ray backend runs dense retrieval alone; a reranker and a non-dense retrieval apply to
Retrieval tasks. (A score normalisation for anything but a weighted hybrid is refused when the settings are made,
:class:`evalkit.search.fusion.RetrievalSettings`.) A model whose similarity is not cosine (its ModelSpec's
``similarity``) is searched by that function on the numpy backend only; its negative distances (euclidean,
manhattan) are not fused or reranked by ColBERT.
"""

from __future__ import annotations

from typing import Any

from evalkit.core import EmbeddingCore
from evalkit.encoders.protocol import capabilities_of
from evalkit.errors import EvalkitError
from evalkit.search.fusion import RetrievalSettings
from evalkit.search.hybrid import HybridRetriever, TwoModelHybrid
from evalkit.search.rerank import RerankStage
from evalkit.search.retriever import Encodings, ModelEncodings, Retriever
from evalkit.search.similarity import check_similarity
from evalkit.search.stages import DistributedSearch, LexicalRows, LexicalSearch, RerankedRetriever, ShardedRetriever
from evalkit.search.vector_retrievers import ColbertRetriever, DenseRetriever, SparseRetriever


def is_lexical(model: Any) -> bool:
    """Whether a model ranks texts itself (BM25), as it declares."""
    return capabilities_of(model).level == "lexical"


def check_models(
    settings: RetrievalSettings,
    encoder: Any,
    *,
    sparse_model: Any | None = None,
    rerank: RerankStage | None = None,
    distributed: DistributedSearch | None = None,
    similarity: str = "cosine",
    search_backend: str = "numpy",
) -> RetrievalSettings:
    """The settings checked against the models (a hybrid's default weights fitted to the outputs given).

    ``similarity`` is the model's similarity function (``ModelSpec.similarity``; a lexical model ignores it)."""
    name = encoder.name
    if is_lexical(encoder):
        if sparse_model is not None:
            raise EvalkitError(f"{name} ranks texts itself; a hybrid needs a vector model as --model")
        if distributed is not None:
            raise EvalkitError(f"{name} ranks texts itself; --backend ray shards a vector model's corpus")
        if settings.mode != "dense":
            raise EvalkitError(f"{name} ranks texts itself; --retrieval {settings.mode} needs a vector model")
        return settings
    outputs = tuple(capabilities_of(encoder).outputs)
    if sparse_model is not None:
        if settings.mode != "hybrid":
            raise EvalkitError("--sparse-model applies to --retrieval hybrid only", field="sparse_model")
        given = capabilities_of(sparse_model).outputs
        if "sparse" not in given:
            raise EvalkitError(
                f"--sparse-model {sparse_model.name} gives {', '.join(given) or 'no'} vectors, not sparse ones",
                field="sparse_model",
            )
        outputs += () if "sparse" in outputs else ("sparse",)
    settings = settings.for_encoder(outputs)
    if distributed is not None and (settings.mode != "dense" or sparse_model is not None or rerank is not None):
        raise EvalkitError("--backend ray runs dense retrieval only (no --retrieval, --sparse-model or --reranker)")
    check_similarity_search(name, check_similarity(similarity), settings, search_backend, distributed)
    return settings


def check_similarity_search(
    name: str, similarity: str, settings: RetrievalSettings, search_backend: str, distributed: Any | None
) -> None:
    """A similarity other than cosine is searched exactly (as mteb scores it) by the numpy backend alone; a
    combination that would score it otherwise is refused, never searched by cosine instead."""
    if similarity == "cosine":
        return
    if distributed is not None:
        raise EvalkitError(
            f"--backend ray searches by cosine; {name} scores by {similarity} similarity (use --backend local)",
            field="backend",
        )
    if search_backend == "faiss":
        raise EvalkitError(
            f"--search-backend faiss searches by cosine; {name} scores by {similarity} similarity "
            "(use --search-backend numpy)",
            field="search_backend",
        )
    if similarity != "dot" and settings.mode != "dense":
        raise EvalkitError(
            f"--retrieval {settings.mode} combines cosine or dot scores; {name} scores by {similarity} "
            "(negative distances): use --retrieval dense",
            field="retrieval",
        )


def check_task(task_name: str, task_type: str, *, encoder: Any, settings: RetrievalSettings, reranked: bool) -> None:
    """Whether the run's models can score a task of this type, as its kind declares (``TaskKind.retrieval``);
    raised before any of the run's encoding."""
    from evalkit.kinds import get_kind

    searched = get_kind(task_type).retrieval  # "any": every first stage; "dense": dense only; "none": no search
    if is_lexical(encoder) and searched != "any":
        raise EvalkitError(f"{encoder.name} ranks documents; it cannot score task '{task_name}' ({task_type})")
    if reranked and searched != "any":
        raise EvalkitError(f"--reranker applies to Retrieval tasks, not to '{task_name}' ({task_type})")
    if searched == "dense" and settings.mode != "dense":
        raise EvalkitError(f"task '{task_name}' ({task_type}) is scored with dense retrieval only")


def build_retriever(
    settings: RetrievalSettings,
    encoder: Any,
    core: EmbeddingCore,
    *,
    search_backend: str = "numpy",
    sparse_model: Any | None = None,
    sparse_tag_name: str = "",
    rerank: RerankStage | None = None,
    distributed: DistributedSearch | None = None,
    similarity: str = "cosine",
) -> tuple[Retriever, RetrievalSettings]:
    """The run's retriever and its checked settings. Builds no encoding: the retriever encodes when it indexes.

    ``similarity`` is the model's (``ModelSpec.similarity``): its dense search ranks by it."""
    settings = check_models(
        settings,
        encoder,
        sparse_model=sparse_model,
        rerank=rerank,
        distributed=distributed,
        similarity=similarity,
        search_backend=search_backend,
    )
    retriever: Retriever
    if is_lexical(encoder):
        retriever = LexicalSearch(encoder)
    elif distributed is not None:
        retriever = ShardedRetriever(distributed, encoder, core)
    elif settings.mode == "dense":
        retriever = DenseRetriever(ModelEncodings(encoder, core), search_backend, similarity)  # type: ignore[arg-type]
    else:
        dense = (search_backend, similarity)
        retriever = _vector_retriever(settings, encoder, core, dense, sparse_model, sparse_tag_name)
    if rerank is not None:
        retriever = RerankedRetriever(retriever, rerank, core)
    return retriever, settings


def _vector_retriever(
    settings: RetrievalSettings,
    encoder: Any,
    core: EmbeddingCore,
    dense_search: tuple[str, str],
    sparse_model: Any | None,
    sparse_tag_name: str,
) -> Retriever:
    """Sparse, ColBERT or a hybrid over one encoding of the model's outputs (and a second model's sparse rows);
    ``dense_search`` is the dense member's (search backend, similarity)."""
    own = tuple(kind for kind in settings.outputs if sparse_model is None or kind != "sparse")
    encodings = ModelEncodings(encoder, core, own)
    members: dict[str, Retriever] = {}
    dense = DenseRetriever(encodings, *dense_search) if "dense" in settings.outputs else None  # type: ignore[arg-type]
    if dense is not None:
        members["dense"] = dense
    if "sparse" in settings.outputs:
        members["sparse"] = SparseRetriever(_sparse_encodings(sparse_model, core) if sparse_model else encodings)
    if "colbert" in settings.outputs:
        members["colbert"] = ColbertRetriever(encodings, first_stage=dense, candidates=settings.candidates)
    if settings.mode != "hybrid":
        return members[settings.mode]
    chosen = {name: members[name] for name in settings.retrievers}
    if sparse_model is None:
        return HybridRetriever(chosen, settings)
    return TwoModelHybrid(chosen, settings, sparse_model=sparse_model.fingerprint(), sparse_tag_name=sparse_tag_name)


def _sparse_encodings(sparse_model: Any, core: EmbeddingCore) -> Encodings:
    """A second model's sparse rows: BM25's term weights, or a sparse encoder's through the core (no prompt)."""
    if is_lexical(sparse_model):
        return LexicalRows(sparse_model)
    return ModelEncodings(sparse_model, core, ("sparse",), use_prompts=False, label="sparse")


__all__ = ["build_retriever", "check_models", "check_similarity_search", "check_task", "is_lexical"]
