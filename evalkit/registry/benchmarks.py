"""Named benchmarks: ordered task sets whose mean is a published number (MTEB(eng, v1), C-MTEB, BEIR).

The MTEB benchmarks come from the installed mteb package, because the leaderboard scores each task on the benchmark's
own restriction of it (only the English subsets of STS17 in MTEB(eng, v1), only the test split of ATEC in
MTEB(cmn, v1)); copying those lists would drift. Benchmarks mteb does not define the way we need (BEIR as the paper's
18 datasets) are YAML files in ``tasks/benchmarks/``. Listing benchmarks loads no data and needs no network.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.errors import SpecError, UnknownTaskError
from evalkit.registry.tasks import TaskSpec, parse_task_spec, task_spec_dirs
from evalkit.registry.yaml_spec import SpecMapping, read_spec_file
from evalkit.safe_paths import is_safe_component

if TYPE_CHECKING:
    from mteb.abstasks.abstask import AbsTask

MTEB_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "MTEB(eng, v1)": (),
    "MTEB(eng, v2)": (),
    "MTEB(cmn, v1)": ("C-MTEB",),
}
"""The mteb benchmarks evalkit offers, each with the aliases we add to mteb's own ("C-MTEB" is unknown to mteb).

Only benchmarks whose leaderboard score is the plain mean over tasks belong here; mteb benchmarks with other
aggregations (HUME's subset mean, RTEB's public-only mean) would need their own rule in the scorer.
"""

_SPEC_FIELDS = {
    "name",
    "version",
    "description",
    "reference",
    "aliases",
    "languages",
    "tasks",
    "aggregates",
    "not_in_mteb",
    "language_table",
}
_NOT_IN_MTEB_FIELDS = {"type", "note"}


@dataclass(frozen=True)
class Benchmark:
    """A named, ordered task set and how its tasks map onto mteb's task objects."""

    name: str
    task_names: tuple[str, ...]
    source: str  # "mteb", or the path of the YAML file that defines it
    aliases: tuple[str, ...] = ()
    description: str = ""
    reference: str = ""
    version: int = 1  # YAML benchmarks: bump when the task list changes; mteb versions its names instead
    languages: tuple[str, ...] = ()  # YAML benchmarks: restrict every task to these languages (empty: all)
    aggregates: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    """Tasks whose score is the mean of member tasks (CQADupstackRetrieval → its 12 forums)."""
    not_in_mteb: Mapping[str, tuple[str, str]] = field(default_factory=dict, hash=False)
    """Tasks mteb has no task for: name → (task type, why). They always score as missing."""
    spec_tasks: Mapping[str, TaskSpec] = field(default_factory=dict, hash=False)
    """Tasks only an evalkit spec file defines (MKQA): name → its spec, restricted to the benchmark's languages.
    They have no mteb task object; they run and score on their spec's splits and subsets."""
    language_table: tuple[str, ...] = ()
    """Scores to report per language (hf subset) with their average, as the BGE-M3 paper's MIRACL and MKQA tables."""

    def mteb_tasks(self) -> tuple[AbsTask, ...]:
        """mteb task objects, in benchmark order, restricted to the benchmark's languages, splits and subsets.

        Tasks listed in ``not_in_mteb`` (and aggregates mteb does not define) have no object and are left out.
        """
        if self.source == "mteb":
            return _mteb_benchmark_tasks(self.name)
        tasks = (_mteb_task(name, self.languages) for name in self.task_names)
        return tuple(task for task in tasks if task is not None)

    def member_tasks(self, aggregate: str) -> tuple[AbsTask, ...]:
        """mteb task objects of an aggregate's members (the 12 CQADupStack forums), restricted like the rest."""
        if aggregate not in self.aggregates:
            raise KeyError(f"{aggregate} is not an aggregate task of {self.name}")
        parent = next((t for t in self.mteb_tasks() if t.metadata.name == aggregate), None)
        if parent is not None and parent.is_aggregate:
            return tuple(parent.metadata.tasks)
        return tuple(_require_mteb_task(name, self.languages) for name in self.aggregates[aggregate])

    def task_type(self, task_name: str) -> str:
        """The mteb task type (``Retrieval``, ``STS``, …) that the per-type means group by."""
        if task_name in self.not_in_mteb:
            return self.not_in_mteb[task_name][0]
        if task_name in self.spec_tasks:
            return self.spec_tasks[task_name].type
        task = _mteb_task(task_name, self.languages)
        if task is not None:
            return str(task.metadata.type)
        return str(_require_mteb_task(self.aggregates[task_name][0], self.languages).metadata.type)


@cache
def _mteb_task(name: str, languages: tuple[str, ...] = ()) -> AbsTask | None:
    """The mteb task object for ``name`` (optionally restricted to languages), or ``None``. Loads no data."""
    import mteb

    try:
        return mteb.get_task(name, languages=list(languages) or None)
    except KeyError:
        return None


def _require_mteb_task(name: str, languages: tuple[str, ...]) -> AbsTask:
    task = _mteb_task(name, languages)
    if task is None:
        raise UnknownTaskError(f"mteb has no task '{name}'")
    return task


@cache
def _mteb_benchmark_tasks(name: str) -> tuple[AbsTask, ...]:
    import mteb

    return tuple(mteb.get_benchmark(name).tasks)


@cache
def _mteb_benchmark(name: str) -> Benchmark:
    import mteb

    bench = mteb.get_benchmark(name)
    aggregates = {
        task.metadata.name: tuple(member.metadata.name for member in task.metadata.tasks)
        for task in bench.tasks
        if task.is_aggregate
    }
    return Benchmark(
        name=bench.name,
        aliases=tuple(dict.fromkeys([*bench.aliases, *MTEB_BENCHMARKS[name]])),
        task_names=tuple(task.metadata.name for task in bench.tasks),
        source="mteb",
        description=" ".join((bench.description or "").split()),
        reference=str(bench.reference or ""),
        aggregates=aggregates,
    )


def _check_aggregates(
    spec: SpecMapping, tasks: tuple[str, ...], languages: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    node = spec.child("aggregates")
    if node is None:
        return {}
    aggregates: dict[str, tuple[str, ...]] = {}
    for name in node.values:
        members = node.get_str_list(name)
        if name not in tasks:
            raise node.error(name, "an aggregate must also be listed in 'tasks'")
        if not members or len(set(members)) != len(members):
            raise node.error(name, "expected a non-empty list of distinct member tasks")
        _check_members(node, name, members, tasks, languages)
        aggregates[name] = members
    return aggregates


def _check_members(
    node: SpecMapping, name: str, members: tuple[str, ...], tasks: tuple[str, ...], languages: tuple[str, ...]
) -> None:
    """An aggregate's members: mteb tasks of one type, listed only here, and mteb's own members where mteb
    defines the aggregate."""
    for member in members:
        if member in tasks:
            raise node.error(name, f"member '{member}' is also in 'tasks'; it would count twice")
        if _mteb_task(member, languages) is None:
            raise node.error(name, f"member '{member}' is not an mteb task")
    if len({_mteb_task(member, languages).metadata.type for member in members}) != 1:
        raise node.error(name, "members must all have the same task type")
    parent = _mteb_task(name, languages)
    if parent is not None and not parent.is_aggregate:
        raise node.error(name, f"'{name}' is an ordinary mteb task, not an aggregate of others")
    if parent is not None and {m.metadata.name for m in parent.metadata.tasks} != set(members):
        mteb_members = sorted(m.metadata.name for m in parent.metadata.tasks)
        raise node.error(name, f"mteb's aggregate '{name}' has other members: {', '.join(mteb_members)}")


def _check_not_in_mteb(spec: SpecMapping, tasks: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    node = spec.child("not_in_mteb")
    if node is None:
        return {}
    entries: dict[str, tuple[str, str]] = {}
    for name in node.values:
        entry = node.child(name)
        assert entry is not None  # name is one of node's keys
        entry.reject_unknown(_NOT_IN_MTEB_FIELDS)
        if name not in tasks:
            raise node.error(name, "must also be listed in 'tasks'")
        if _mteb_task(name) is not None:
            raise node.error(name, "mteb has this task now; remove it from 'not_in_mteb'")
        entries[name] = (entry.get("type", str, required=True), entry.get("note", str, required=True))
    return entries


def _evalkit_spec(name: str, languages: tuple[str, ...]) -> TaskSpec | None:
    """The spec of a task only an evalkit spec file defines (the last spec folder holding it wins, as in the
    registry), restricted to ``languages``; ``None`` when no spec file names it or mteb knows the task."""
    if not is_safe_component(name):  # a task name never leads to a file outside the spec folders
        return None
    paths = [folder / f"{name}.yaml" for folder in task_spec_dirs() if (folder / f"{name}.yaml").is_file()]
    if not paths:
        return None
    spec = parse_task_spec(paths[-1])
    if spec.metadata_source != "spec":
        return None
    return spec.restricted_to_languages(languages) if languages else spec


def parse_benchmark_spec(path: Path) -> Benchmark:
    """Read one benchmark YAML file strictly: unknown fields and task names mteb does not know are errors."""
    spec = read_spec_file(path)
    spec.reject_unknown(_SPEC_FIELDS)
    name = spec.get("name", str, required=True)
    languages = spec.get_str_list("languages")
    _check_language_codes(spec, languages)
    tasks = spec.get_str_list("tasks")
    if not tasks:
        raise SpecError("required field is missing or empty", file=path, line=spec.start_line, field="tasks")
    duplicates = sorted({t for t in tasks if tasks.count(t) > 1})
    if duplicates:
        raise spec.error("tasks", f"listed twice: {', '.join(duplicates)}")
    aggregates = _check_aggregates(spec, tasks, languages)
    not_in_mteb = _check_not_in_mteb(spec, tasks)
    spec_tasks: dict[str, TaskSpec] = {}
    for task in tasks:
        if task not in aggregates and task not in not_in_mteb and _mteb_task(task, languages) is None:
            own = _evalkit_spec(task, languages)
            if own is not None:
                if not own.hf_subsets:
                    raise spec.error("languages", f"task '{task}' has no subset in {', '.join(languages)}")
                spec_tasks[task] = own
                continue
            close = difflib.get_close_matches(task, _mteb_task_names(), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise spec.error(
                "tasks",
                f"'{task}' is not an mteb task{hint} nor one of evalkit's spec files; if mteb lacks it, list it in "
                "'not_in_mteb'",
            )
    return Benchmark(
        name=name,
        aliases=spec.get_str_list("aliases"),
        task_names=tasks,
        source=str(path),
        description=" ".join(spec.get("description", str, "").split()),
        reference=spec.get("reference", str, ""),
        version=spec.get("version", int, 1),
        languages=languages,
        aggregates=aggregates,
        not_in_mteb=not_in_mteb,
        spec_tasks=spec_tasks,
        language_table=spec.get_str_list("language_table"),
    )


def _check_language_codes(spec: SpecMapping, languages: tuple[str, ...]) -> None:
    """mteb's own check (ISO 639-3, optionally ``-`` ISO 15924), here rather than as mteb's ValueError later."""
    from mteb.languages.check_language_code import check_language_code

    for code in languages:
        try:
            check_language_code(code)
        except ValueError as err:
            raise spec.error("languages", str(err).split(", you can find")[0]) from None


@cache
def _mteb_task_names() -> tuple[str, ...]:
    import mteb

    return tuple(task.metadata.name for task in mteb.get_tasks(exclude_superseded=False))


def benchmark_spec_files() -> list[Path]:
    """``benchmarks/*.yaml`` in every task spec folder (built-in first, then ``EVALKIT_TASKS_PATH``)."""
    return [path for folder in task_spec_dirs() for path in sorted((folder / "benchmarks").glob("*.yaml"))]


def list_benchmarks() -> list[Benchmark]:
    """The mteb benchmarks in ``MTEB_BENCHMARKS``, then the YAML ones (which replace one of the same name)."""
    found: dict[str, Benchmark] = {name: _mteb_benchmark(name) for name in MTEB_BENCHMARKS}
    for path in benchmark_spec_files():
        bench = parse_benchmark_spec(path)
        found[bench.name] = bench
    return list(found.values())


def _key(name: str) -> str:
    """Lookup key: case and spaces do not matter, so ``mteb(eng,v1)`` finds ``MTEB(eng, v1)``."""
    return "".join(name.split()).lower()


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` or one of its aliases ("MTEB", "C-MTEB", "CMTEB", "BEIR", …)."""
    benchmarks = list_benchmarks()
    by_key: dict[str, Benchmark] = {}
    for bench in benchmarks:  # names win over aliases, later definitions over earlier ones
        for alias in bench.aliases:
            by_key[_key(alias)] = bench
    for bench in benchmarks:
        by_key[_key(bench.name)] = bench
    if _key(name) in by_key:
        return by_key[_key(name)]
    labels = {label.lower(): label for b in benchmarks for label in (*b.aliases, b.name)}
    close = [labels[c] for c in difflib.get_close_matches(name.lower(), labels, n=3, cutoff=0.5)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownTaskError(f"unknown benchmark '{name}'; {hint}known: {', '.join(b.name for b in benchmarks)}")


def benchmark_task_names() -> tuple[str, ...]:
    """Every task a named benchmark runs (aggregates and their members), for listing: mteb tasks only."""
    names: dict[str, None] = {}
    for bench in list_benchmarks():
        for name in bench.task_names:
            if name not in bench.not_in_mteb:
                names[name] = None
        for members in bench.aggregates.values():
            names.update(dict.fromkeys(members))
    return tuple(names)
