"""``type_deltas`` computes once per diff (the Markdown and the HTML of one report share it), but a diff created
after another was dropped — often at the very same ``id()`` — must get its own result, and the cache must not keep
diffs alive."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

from evalkit.reports.compare_speed import type_deltas
from evalkit.reports.diff import DiffSettings, RunDiff


def _diff(delta: float) -> RunDiff:
    """A diff of one Retrieval task whose delta is ``delta``; no run records, so no interval is drawn (quick)."""
    task = SimpleNamespace(task="T", task_type="Retrieval", delta=delta)
    no_records = SimpleNamespace(tasks={})
    return RunDiff(no_records, no_records, DiffSettings(resamples=10), [task])  # type: ignore[arg-type, list-item]


def test_dropped_diffs_never_share_a_result() -> None:
    dead = []  # ids are typically reused across iterations here: the case a stale entry would be returned in
    for index in range(200):
        diff = _diff(index / 1000)
        found = type_deltas(diff)
        assert [t.delta for t in found] == [index / 1000]
        assert type_deltas(diff) is found  # the same diff reads its computed result again
        dead.append(weakref.ref(diff))
        del diff, found
    gc.collect()
    assert all(ref() is None for ref in dead)  # the cache kept no diff alive


def test_a_live_diff_keeps_its_result_beside_others() -> None:
    first, second = _diff(0.25), _diff(-0.5)
    assert [t.delta for t in type_deltas(first)] == [0.25]
    assert [t.delta for t in type_deltas(second)] == [-0.5]
    assert [t.delta for t in type_deltas(first)] == [0.25]
