"""Task data from the Hugging Face hub at the pinned revision, loaded the way mteb loads it.

For a task mteb defines, mteb's own ``load_data`` runs (with the spec's dataset path and revision), so any
task-specific ``dataset_transform`` (renamed columns, subsampling, filtering) is applied exactly as on the
leaderboard. A task only the spec knows is loaded with mteb's generic retrieval loader or ``load_dataset``.
Either way the result is converted to evalkit's records; failures of the hub or ``datasets`` become one-line
MissingDataErrors naming ``hub:<path>@<revision>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from evalkit.errors import DataError, EvalkitError, MissingDataError
from evalkit.kinds import get_kind
from evalkit.kinds.kind import HubReader
from evalkit.loaders.native import splits_to_load
from evalkit.loaders.pairs import check_gold_scores
from evalkit.loaders.text import check_text
from evalkit.records import (
    Corpus,
    NativeSplit,
    PairLabelSplit,
    PairSplit,
    Qrels,
    Queries,
    RerankingSplit,
    RetrievalSplit,
    Split,
    TaskData,
)
from evalkit.registry.tasks import TaskSpec

_MAX_REASON = 240

FromMteb = Callable[[Any, Any, str], Split]
"""One split of a loaded mteb task as evalkit's record: ``(mteb task, the split's data, where)``."""
GenericReader = Callable[[TaskSpec, str], "dict[str, dict[str, Split]]"]
"""Every split of a task only the spec knows, from the hub with mteb's or ``datasets``' generic loaders."""


def hub_location(spec: TaskSpec) -> str:
    """``hub:<path>@<revision>``, the place named in origins and errors (``main`` when nothing is pinned)."""
    return f"hub:{spec.dataset_path}@{spec.dataset_revision or 'main'}"


def load_from_hub(spec: TaskSpec) -> TaskData:
    """Every eval split of every subset of ``spec`` from the hub (or the ``datasets`` cache when offline), read by
    the hub reader its kind declares."""
    where = hub_location(spec)
    if spec.dataset_path is None:
        raise MissingDataError(f"task '{spec.name}' names no hub dataset")
    read = get_kind(spec.type).read_hub
    if read is None:
        raise EvalkitError(f"task '{spec.name}' is of type '{spec.type}', which evalkit cannot load from the hub yet")
    return TaskData(task_name=spec.name, splits=read(spec, where), origin=where, source_files=[])


def mteb_only(from_mteb: FromMteb) -> HubReader:
    """A hub reader for a kind evalkit loads only through mteb's task (a task only the spec knows is refused)."""

    def read(spec: TaskSpec, where: str) -> dict[str, dict[str, Split]]:
        if spec.metadata_source != "mteb":
            raise EvalkitError(
                f"task '{spec.name}' is of type '{spec.type}', which evalkit cannot load from the hub yet"
            )
        return load_with_mteb(spec, where, from_mteb)

    return read


def mteb_or_generic(from_mteb: FromMteb, generic: GenericReader) -> HubReader:
    """A hub reader: mteb's loading for a task mteb defines, ``generic`` for one only the spec knows."""

    def read(spec: TaskSpec, where: str) -> dict[str, dict[str, Split]]:
        return load_with_mteb(spec, where, from_mteb) if spec.metadata_source == "mteb" else generic(spec, where)

    return read


@contextmanager
def _hub_errors(where: str) -> Iterator[None]:
    """Turn what ``datasets``, ``huggingface_hub`` or mteb raise while loading into one MissingDataError line.

    They raise many unrelated types (ConnectionError when offline, FileNotFoundError, ValueError for an
    unknown config or split, pyarrow errors for a bad file), so this catches broadly, but only around loading.
    """
    try:
        yield
    except EvalkitError:
        raise
    except Exception as err:
        raise MissingDataError(_reason(err), file=where) from err


def _reason(err: Exception) -> str:
    text = _first_line(err)
    if err.__cause__ is not None:  # datasets wraps the useful message: "An error occurred while generating…"
        text += f" ({_first_line(err.__cause__)})"
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 1] + "…"
    if isinstance(err, ConnectionError) and _offline():
        text += "; offline mode is on and the local cache does not hold it"
    return text


def _first_line(err: BaseException) -> str:
    message = err.args[0] if isinstance(err, KeyError) and err.args else err  # str(KeyError) adds quotes
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _offline() -> bool:
    import datasets

    return bool(datasets.config.HF_HUB_OFFLINE)


# --- tasks mteb defines: reuse mteb's loading ------------------------------------------------------------


def _mteb_task(spec: TaskSpec, where: str) -> Any:
    """mteb's task object, pointed at the spec's dataset path/revision and restricted to its subsets/splits.

    ``metadata`` is a class attribute shared by every instance, so it is replaced by a copy on this instance,
    never edited in place.
    """
    import mteb

    with _hub_errors(where):
        task = mteb.get_task(spec.name)
    dataset = {**task.metadata.dataset, "path": spec.dataset_path, "revision": spec.dataset_revision}
    task.metadata = task.metadata.model_copy(update={"dataset": dataset})
    task.hf_subsets = list(spec.hf_subsets)
    task.filter_eval_splits(list(spec.eval_splits))
    return task


def load_native_from_hub(spec: TaskSpec, where: str, *, trains: bool = False) -> dict[str, dict[str, Split]]:
    """Types scored by mteb's evaluators keep mteb's own datasets (after its dataset_transform), as they are;
    ``trains``: the kind's protocol also needs the task's training split."""
    task = _mteb_task(spec, where)
    with _hub_errors(where):
        task.load_data()
    wanted = splits_to_load(task, spec.eval_splits, trains=trains)
    return {
        subset: {split: NativeSplit(dataset=_pick(task.dataset, subset, split, where)) for split in wanted}
        for subset in spec.hf_subsets
    }


def load_with_mteb(spec: TaskSpec, where: str, from_mteb: FromMteb) -> dict[str, dict[str, Split]]:
    """Every split loaded by mteb's own ``load_data``, each converted by the kind's ``from_mteb``."""
    task = _mteb_task(spec, where)
    with _hub_errors(where):
        task.load_data()
        convert = getattr(task, "convert_v1_dataset_format_to_v2", None)
        if convert is not None:  # retrieval tasks that override load_data still fill the v1 attributes
            convert(num_proc=None)
    return {
        subset: {split: from_mteb(task, _pick(task.dataset, subset, split, where), where) for split in spec.eval_splits}
        for subset in spec.hf_subsets
    }


def retrieval_from_mteb(task: Any, data: Any, where: str) -> RetrievalSplit:
    return _retrieval_split(data, where)


def reranking_from_mteb(task: Any, data: Any, where: str) -> RerankingSplit:
    return _reranking_split(data, where)


def pair_labels_from_mteb(task: Any, data: Any, where: str) -> PairLabelSplit:
    return _pair_label_split(data, task.input1_column_name, task.input2_column_name, task.label_column_name, where)


def pairs_from_mteb(task: Any, data: Any, where: str) -> PairSplit:
    columns = tuple(task.column_names)
    if not all(isinstance(c, str) for c in columns):
        raise EvalkitError(f"task '{task.metadata.name}' compares non-text columns; evalkit loads text STS only")
    return _pair_split(data, columns[0], columns[1], where)


def _pick(dataset: Mapping[str, Any], subset: str, split: str, where: str) -> Any:
    """``dataset[subset][split]``; a monolingual mteb task may hold ``dataset[split]`` (mteb allows both)."""
    container = dataset.get(subset) if subset in dataset else (dataset if subset == "default" else None)
    if container is None:
        raise MissingDataError(f"no subset '{subset}' (found: {', '.join(map(str, dataset)) or 'none'})", file=where)
    if split not in container:
        raise MissingDataError(
            f"no split '{split}' in subset '{subset}' (found: {', '.join(map(str, container)) or 'none'})",
            file=where,
        )
    return container[split]


# --- tasks only the spec knows: mteb's generic loaders ----------------------------------------------------


def load_generic_retrieval(spec: TaskSpec, where: str) -> dict[str, dict[str, Split]]:
    """A retrieval task only the spec knows, split by split with mteb's generic retrieval loader."""
    return {
        subset: {split: _generic_retrieval(spec, subset, split, where) for split in spec.eval_splits}
        for subset in spec.hf_subsets
    }


def load_generic_pairs(spec: TaskSpec, where: str) -> dict[str, dict[str, Split]]:
    """An STS task only the spec knows: ``sentence1``/``sentence2``/``score`` columns, with ``load_dataset``."""
    return {subset: _generic_pairs(spec, subset, where) for subset in spec.hf_subsets}


def _generic_retrieval(spec: TaskSpec, subset: str, split: str, where: str) -> RetrievalSplit:
    from datasets import get_dataset_split_names
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalDatasetLoader

    with _hub_errors(where):
        loader = RetrievalDatasetLoader(
            hf_repo=spec.dataset_path, revision=spec.dataset_revision, split=split, config=subset
        )
        # mteb falls back to a config's only split when the asked-for one is absent, which would evaluate the
        # wrong split under the right name; the qrels must hold the split itself.
        qrels_config = f"{subset}-qrels" if subset != "default" else "default"
        if qrels_config == "default" and "default" not in loader.dataset_configs:
            qrels_config = "qrels"
        if qrels_config in loader.dataset_configs:
            found = get_dataset_split_names(spec.dataset_path, revision=spec.dataset_revision, config_name=qrels_config)
            if split not in found:
                raise MissingDataError(
                    f"no split '{split}' in config '{qrels_config}' (found: {', '.join(found)})", file=where
                )
        data = loader.load()
    return _retrieval_split(data, where)


def _generic_pairs(spec: TaskSpec, subset: str, where: str) -> dict[str, Split]:
    from datasets import load_dataset

    with _hub_errors(where):
        loaded = load_dataset(
            spec.dataset_path, name=None if subset == "default" else subset, revision=spec.dataset_revision
        )
    return {
        split: _pair_split(_pick({subset: loaded}, subset, split, where), "sentence1", "sentence2", where)
        for split in spec.eval_splits
    }


# --- conversion to records --------------------------------------------------------------------------------


def _columns(dataset: Any, names: list[str], where: str, what: str) -> dict[str, list[Any]]:
    """Whole columns as Python lists, respecting an indices mapping (``select``), checked to exist."""
    for name in names:
        if name not in dataset.column_names:
            raise DataError(
                f"{what} has no column '{name}' (columns: {', '.join(dataset.column_names)})",
                file=where,
                field=name,
            )
    return dataset.select_columns(names)[:]


def _strings(values: list[Any], where: str, what: str, field: str, *, ids: bool = False) -> list[str]:
    out: list[str] = []
    for row, value in enumerate(values):
        if isinstance(value, str):
            out.append(check_text(value, file=where, field=field, row=row))
        elif ids and isinstance(value, int) and not isinstance(value, bool):
            out.append(str(value))
        elif value is None and field == "title":
            out.append("")
        else:
            raise DataError(f"{what} row {row}: expected a string, got {type(value).__name__}", file=where, field=field)
    return out


def _retrieval_split(data: Mapping[str, Any], where: str) -> RetrievalSplit:
    if data.get("top_ranked"):
        raise EvalkitError(
            f"{where}: the split has top-ranked candidate lists (reranking), which evalkit does not evaluate"
        )
    corpus_ds, queries_ds = data["corpus"], data["queries"]
    has_title = "title" in corpus_ds.column_names
    corpus_cols = _columns(corpus_ds, ["id", "text", *(["title"] if has_title else [])], where, "corpus")
    n_docs = len(corpus_cols["id"])
    corpus = Corpus(
        ids=_strings(corpus_cols["id"], where, "corpus", "id", ids=True),
        titles=_strings(corpus_cols["title"], where, "corpus", "title") if has_title else [""] * n_docs,
        texts=_strings(corpus_cols["text"], where, "corpus", "text"),
    )
    query_cols = _columns(queries_ds, ["id", "text"], where, "queries")
    queries = Queries(
        ids=_strings(query_cols["id"], where, "queries", "id", ids=True),
        texts=_strings(query_cols["text"], where, "queries", "text"),
    )
    qrels: Qrels = {
        str(query_id): {str(doc_id): int(grade) for doc_id, grade in docs.items()}
        for query_id, docs in data["relevant_docs"].items()
    }
    return RetrievalSplit(corpus=corpus, queries=queries, qrels=qrels)


def _pair_split(dataset: Any, column1: str, column2: str, where: str) -> PairSplit:
    cols = _columns(dataset, [column1, column2, "score"], where, "split")
    try:
        scores = np.asarray(cols["score"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("expected numbers", file=where, field="score") from None
    if scores.ndim != 1 or not np.isfinite(scores).all():
        raise DataError("expected a finite number in every row", file=where, field="score")
    check_gold_scores(scores, file=where)
    return PairSplit(
        texts1=_strings(cols[column1], where, "split", column1),
        texts2=_strings(cols[column2], where, "split", column2),
        scores=scores,
    )


def _reranking_split(data: Mapping[str, Any], where: str) -> RerankingSplit:
    """mteb 2 holds reranking as retrieval data plus ``top_ranked``: each query's candidate doc ids."""
    base = _retrieval_split({**data, "top_ranked": None}, where)
    top_ranked = data.get("top_ranked") or {}
    candidates = [[str(doc_id) for doc_id in top_ranked.get(query_id, [])] for query_id in base.queries.ids]
    return RerankingSplit(queries=base.queries, candidates=candidates, corpus=base.corpus, qrels=base.qrels)


def _pair_label_split(dataset: Any, column1: str, column2: str, label_column: str, where: str) -> PairLabelSplit:
    """Pairs and 0/1 labels; mteb's older datasets hold a whole split as one row of lists, which is flattened."""
    cols = _columns(dataset, [column1, column2, label_column], where, "split")
    if cols[column1] and isinstance(cols[column1][0], list):
        cols = {name: [item for row in values for item in row] for name, values in cols.items()}
    try:
        labels = np.asarray(cols[label_column], dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError("expected 0/1 labels", file=where, field=label_column) from None
    if not np.isin(labels, (0, 1)).all():
        raise DataError("expected 0/1 labels", file=where, field=label_column)
    return PairLabelSplit(
        texts1=_strings(cols[column1], where, "split", column1),
        texts2=_strings(cols[column2], where, "split", column2),
        labels=labels,
    )
