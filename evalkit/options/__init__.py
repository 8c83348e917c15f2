"""A run's options as typed sections (selection, output, encoding, model overrides, retrieval, rerank, backend,
cache), parsed once from the CLI or from ``evalkit.evaluate(**options)`` keywords by the same names.

Checks that need nothing but the values run when a section is made; checks that look at this machine (the device,
the output and cache folders) run in :meth:`RunOptions.check_environment`, still before any data or model; checks
across sections run in :meth:`RunOptions.__post_init__`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.options.base import Section
from evalkit.options.sections import (
    SECTIONS,
    BackendOptions,
    CacheOptions,
    EncodingOptions,
    ModelOverrides,
    OutputOptions,
    RerankOptions,
    RetrievalOptions,
    SelectionOptions,
    section_of,
)

_FIELD_OF_SECTION = {
    SelectionOptions: "selection",
    OutputOptions: "output",
    EncodingOptions: "encoding",
    ModelOverrides: "overrides",
    RetrievalOptions: "retrieval",
    RerankOptions: "rerank",
    BackendOptions: "backend",
    CacheOptions: "cache",
}


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Every option of ``evalkit run``, by section."""

    selection: SelectionOptions = dataclasses.field(default_factory=SelectionOptions)
    output: OutputOptions = dataclasses.field(default_factory=OutputOptions)
    encoding: EncodingOptions = dataclasses.field(default_factory=EncodingOptions)
    overrides: ModelOverrides = dataclasses.field(default_factory=ModelOverrides)
    retrieval: RetrievalOptions = dataclasses.field(default_factory=RetrievalOptions)
    rerank: RerankOptions = dataclasses.field(default_factory=RerankOptions)
    backend: BackendOptions = dataclasses.field(default_factory=BackendOptions)
    cache: CacheOptions = dataclasses.field(default_factory=CacheOptions)
    command: tuple[str, ...] | None = None  # what the run record says produced it

    def __post_init__(self) -> None:
        if self.backend.backend == "ray" and (
            self.retrieval.retrieval != "dense" or self.retrieval.sparse_model or self.rerank.reranker
        ):
            raise EvalkitError("--backend ray runs dense retrieval (no --retrieval, --sparse-model or --reranker yet)")

    def check_environment(self) -> None:
        """The checks that look at this machine, before any data is loaded or model built."""
        self.output.check_environment()
        self.encoding.check_environment()
        self.cache.check_environment()

    @classmethod
    def from_kwargs(cls, **options: Any) -> RunOptions:
        """Options by their CLI names (``precision="bf16"``, ``tasks=[...]``, ``pooling="cls"``); an unknown name is
        an error listing the known ones. ``model_overrides={...}`` is accepted for the four override names."""
        overrides = options.pop("model_overrides", None) or {}
        command = options.pop("command", None)
        by_section: dict[type[Section], dict[str, Any]] = {}
        for name, value in {**options, **overrides}.items():
            section = section_of(name)
            if section is None:
                known = ", ".join(sorted(n for s in SECTIONS for n in s.names()))
                raise EvalkitError(f"unknown run option '{name}' (known: {known})", field=name)
            by_section.setdefault(section, {})[name] = value
        made = {_FIELD_OF_SECTION[s]: s.from_values(values) for s, values in by_section.items()}
        return cls(**made, command=tuple(command) if command else None)

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace, command: list[str] | None = None) -> RunOptions:
        made = {_FIELD_OF_SECTION[s]: s.from_namespace(namespace) for s in SECTIONS}
        return cls(**made, command=tuple(command) if command else None)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        for section in SECTIONS:
            section.add_arguments(parser)

    def record(self) -> dict[str, Any]:
        """The run record's settings, by section."""
        return {name: getattr(self, name).record() for name in _FIELD_OF_SECTION.values()}

    def replace(self, **options: Any) -> RunOptions:
        """These options with some changed, by name (validated again)."""
        changed = RunOptions.from_kwargs(**options)
        merged = {}
        for section_type, name in _FIELD_OF_SECTION.items():
            given = {k: v for k, v in options.items() if k in section_type.names()}
            mine = getattr(self, name)
            merged[name] = dataclasses.replace(mine, **{k: getattr(getattr(changed, name), k) for k in given})
        return RunOptions(**merged, command=self.command)


def option_names() -> tuple[str, ...]:
    """Every run option's name, as ``evalkit.evaluate`` takes it."""
    return tuple(name for section in SECTIONS for name in section.names())


__all__ = [
    "BackendOptions",
    "CacheOptions",
    "EncodingOptions",
    "ModelOverrides",
    "OutputOptions",
    "RerankOptions",
    "RetrievalOptions",
    "RunOptions",
    "SelectionOptions",
    "option_names",
]

_ = Mapping  # re-exported type names stay importable for type hints
