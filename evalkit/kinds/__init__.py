"""The task-kind registry: every task type evalkit evaluates, by its mteb type name, each declared in one module.

Loaders, the pipeline, the spec parser and the evaluators ask :func:`get_kind` instead of comparing type strings.
Built-in kinds are registered lazily, lm-eval style (name → ``"module:attribute"``): nothing is imported until a
type is asked for, and a kind module imports its evaluator only when it scores, so parsing specs stays light.

Adding a type is one module declaring a :class:`TaskKind` and one line in ``_BUILTIN`` (or :func:`register` from
a plugin or a test); ``docs/architecture.md`` walks through it.
"""

from __future__ import annotations

import importlib

from evalkit.errors import EvalkitError
from evalkit.kinds.kind import (
    PerItemStatistic,
    SplitArgs,
    SplitEvaluator,
    TaskEvaluator,
    TaskKind,
    each_split,
    mean_over_items,
    no_per_item_test,
    split_jobs,
)

_BUILTIN: dict[str, str] = {
    "Retrieval": "evalkit.kinds.retrieval:RETRIEVAL",
    "Reranking": "evalkit.kinds.reranking:RERANKING",
    "STS": "evalkit.kinds.sts:STS",
    "PairClassification": "evalkit.kinds.pair_classification:PAIR_CLASSIFICATION",
    "Classification": "evalkit.kinds.mteb_native:CLASSIFICATION",
    "MultilabelClassification": "evalkit.kinds.mteb_native:MULTILABEL_CLASSIFICATION",
    "Clustering": "evalkit.kinds.mteb_native:CLUSTERING",
    "BitextMining": "evalkit.kinds.mteb_native:BITEXT_MINING",
    "Summarization": "evalkit.kinds.mteb_native:SUMMARIZATION",
    "AnswerRetrieval": "evalkit.kinds.answer_retrieval:ANSWER_RETRIEVAL",  # evalkit's own (MKQA); not in mteb
}
"""Type name → where its kind is declared. The order is the order kinds are listed in."""

_lazy: dict[str, str] = dict(_BUILTIN)
_loaded: dict[str, TaskKind] = {}


def register(kind: TaskKind, *, replace: bool = False) -> TaskKind:
    """Make ``kind`` known under ``kind.name``; a name already known is an error unless ``replace``."""
    if not replace and kind.name in known_types():
        raise EvalkitError(f"task type '{kind.name}' is already registered")
    _lazy.pop(kind.name, None)
    _loaded[kind.name] = kind
    return kind


def register_lazy(name: str, target: str, *, replace: bool = False) -> None:
    """Make type ``name`` known as ``"package.module:ATTRIBUTE"``, imported when the type is first asked for."""
    if ":" not in target:
        raise EvalkitError(f"expected 'module:attribute' for task type '{name}', got '{target}'")
    if not replace and name in known_types():
        raise EvalkitError(f"task type '{name}' is already registered")
    _loaded.pop(name, None)
    _lazy[name] = target


def unregister(name: str) -> None:
    """Forget type ``name`` (a plugin's or a test's kind); built-in kinds come back only by registering again."""
    _lazy.pop(name, None)
    _loaded.pop(name, None)


def known_types() -> tuple[str, ...]:
    """Every registered type name, built-ins first, without importing any kind module."""
    return tuple(name for name in dict.fromkeys([*_BUILTIN, *_lazy, *_loaded]) if is_known(name))


def is_known(name: str) -> bool:
    """Whether ``name`` is a registered type (imports nothing)."""
    return name in _loaded or name in _lazy


def get_kind(name: str) -> TaskKind:
    """The kind of type ``name``, its module imported on first use; an unknown name lists the known ones."""
    kind = _loaded.get(name)
    if kind is not None:
        return kind
    target = _lazy.get(name)
    if target is None:
        raise EvalkitError(f"unknown task type '{name}' (known: {', '.join(known_types())})", field="type")
    module_name, _, attribute = target.partition(":")
    kind = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(kind, TaskKind) or kind.name != name:
        raise EvalkitError(f"'{target}' does not declare the task kind '{name}'")
    _loaded[name] = kind
    return kind


def all_kinds() -> tuple[TaskKind, ...]:
    """Every registered kind (importing each kind module, which is light)."""
    return tuple(get_kind(name) for name in known_types())


__all__ = [
    "PerItemStatistic",
    "SplitArgs",
    "SplitEvaluator",
    "TaskEvaluator",
    "TaskKind",
    "all_kinds",
    "each_split",
    "get_kind",
    "is_known",
    "known_types",
    "mean_over_items",
    "no_per_item_test",
    "register",
    "register_lazy",
    "split_jobs",
    "unregister",
]
