"""What the registry reads from mteb, remembered on disk so a run that needs nothing else from mteb never imports
it (importing mteb pulls in torch, datasets, pandas and scikit-learn: seconds before any work).

Remembered: a task's metadata as :func:`evalkit.registry.tasks.metadata_from_mteb` turns it into spec fields
(``None`` when mteb does not know the task). The memo (:mod:`evalkit.cache.memo`) is keyed by the task name, mteb's
installed version and evalkit's code stamp, so another mteb or another evalkit derives it again from mteb itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evalkit.cache.memo import memo_key, memo_root, read_memo, write_memo
from evalkit.host import library_version

TASK_KIND = "mteb-task"


def task_metadata(name: str) -> dict[str, Any] | None:
    """mteb's metadata of task ``name`` as spec fields, or None when mteb does not know it; from the memo when one
    of this mteb and this evalkit holds it."""
    from evalkit.registry.tasks import _mteb_task, metadata_from_mteb  # tasks calls this lazily: no cycle

    root = memo_root()
    key = memo_key(TASK_KIND, {"task": name, "mteb": library_version("mteb")})
    found, remembered = read_memo(root, TASK_KIND, key)
    if found and (remembered is None or isinstance(remembered, dict)):
        return remembered
    task = _mteb_task(name)
    values = metadata_from_mteb(task) if task is not None else None
    write_memo(root, TASK_KIND, key, values)
    return values


class LazyNames(Sequence[str]):
    """Names computed on first use: a run of named tasks never lists the benchmarks' tasks (which imports mteb)."""

    def __init__(self, compute: Callable[[], Sequence[str]]) -> None:
        self._compute = compute
        self._names: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = tuple(self._compute())
        return self._names

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())
