"""Did two runs of a task evaluate the same thing? Splits, dataset revision, task version, subset and data.

Data identity is the checksum of the *loaded content* (``data.content_sha256`` in the run record, computed by
``evalkit.results.run_record.content_checksum``): the same rows compare equal whether they were read from the
mirror, the hub or a subset file. Runs recorded before it existed (no content checksum on a side) fall back to the
checksums of the files read, by file name. A run record's ``subset`` (a quick subset's name or manifest) must be
equal on both sides: a subset's score is not the full task's, nor another subset's.
"""

from __future__ import annotations

from typing import Any

from evalkit.errors import EvalkitError
from evalkit.results.record import TaskRecord


class NotComparableError(EvalkitError):
    """The two runs did not evaluate the same thing."""


def _data(record: TaskRecord) -> dict[str, Any]:
    data = (record.record or {}).get("data")
    return data if isinstance(data, dict) else {}


def content_checksum(record: TaskRecord) -> str | None:
    """The checksum of the loaded task content a run recorded, or None (an older run, a published result)."""
    value = _data(record).get("content_sha256")
    return value if isinstance(value, str) else None


def subset_of(record: TaskRecord) -> object:
    """The run record's ``subset`` (None: the full task, or no record)."""
    return (record.record or {}).get("subset")


def _check_data(task: str, base: TaskRecord, cand: TaskRecord) -> None:
    where = cand.result_file
    if subset_of(base) != subset_of(cand):
        raise NotComparableError(
            f"{task}: the runs evaluated different subsets ({subset_of(base)!r} vs {subset_of(cand)!r})",
            file=where,
            field="subset",
        )
    base_content, cand_content = content_checksum(base), content_checksum(cand)
    if base_content is not None and cand_content is not None:
        if base_content != cand_content:
            raise NotComparableError(
                f"{task}: the runs read different data (content checksums {base_content[:12]} vs {cand_content[:12]})",
                file=where,
                field="data.content_sha256",
            )
        return
    base_sums, cand_sums = base.data_checksums, cand.data_checksums
    if base_sums is not None and cand_sums is not None and base_sums != cand_sums:
        changed = sorted(
            name for name in base_sums.keys() | cand_sums.keys() if base_sums.get(name) != cand_sums.get(name)
        )
        raise NotComparableError(
            f"{task}: the runs read different data ({', '.join(changed)} differ)", file=where, field="data.files"
        )


def check_comparable(task: str, base: TaskRecord, cand: TaskRecord) -> None:
    """Raise ``NotComparableError`` (exit 2) when the two results of ``task`` did not score the same thing."""
    where = cand.result_file
    if base.cells.keys() != cand.cells.keys():
        raise NotComparableError(
            f"{task}: the runs scored different splits/subsets: {sorted(base.cells)} vs {sorted(cand.cells)}",
            file=where,
            field="scores",
        )
    if base.dataset_revision and cand.dataset_revision and base.dataset_revision != cand.dataset_revision:
        raise NotComparableError(
            f"{task}: different dataset revisions ({base.dataset_revision} vs {cand.dataset_revision})",
            file=where,
            field="dataset_revision",
        )
    if base.task_version is not None and cand.task_version is not None and base.task_version != cand.task_version:
        raise NotComparableError(
            f"{task}: different task versions ({base.task_version} vs {cand.task_version})", file=where, field="version"
        )
    _check_data(task, base, cand)
