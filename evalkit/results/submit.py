"""Leaderboard submission: copy a run's result files into the embeddings-benchmark/results layout, checked first.

The results repository's CI rejects files that are incomplete or unloadable; checking here means the pull request
does not bounce. Refused (one line each, exit 2, nothing written): a model without a revision, a revision folder
evalkit suffixed for changed settings (``-bf16``, an ablation; unless explicitly allowed), a task mteb does not
know, a missing evaluation split or subset, a non-finite score, a file mteb's own loader cannot read.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from evalkit.errors import DataError, EvalkitError
from evalkit.reports.runs import _revision_folder
from evalkit.results.atomic import write_json

_NO_REVISION = {"", "no_revision_available", "external"}


class SubmissionError(EvalkitError):
    """The results would not be accepted by the leaderboard."""


def _non_finite(value: Any, path: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path or "score"
    if isinstance(value, dict):
        for key, inner in value.items():
            found = _non_finite(inner, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            found = _non_finite(inner, f"{path}[{index}]")
            if found:
                return found
    return None


def _check_task_file(path: Path) -> None:
    import mteb

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text, parse_constant=lambda name: float(name))  # NaN / Infinity are read, then refused
    except json.JSONDecodeError as err:
        raise SubmissionError(f"not JSON: {err.msg}", file=path, line=err.lineno) from None
    where = _non_finite(data.get("scores", {}))
    if where:
        raise SubmissionError(f"non-finite score at scores.{where}", file=path, field=f"scores.{where}")
    name = data.get("task_name")
    try:
        task = mteb.get_task(str(name))
    except Exception:
        raise SubmissionError(f"unknown task '{name}' (not an mteb task)", file=path, field="task_name") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = mteb.TaskResult.from_disk(path)
    except Exception as err:
        raise SubmissionError(f"mteb cannot load it: {' '.join(str(err).split())[:200]}", file=path) from None
    for split in task.eval_splits:
        cells = result.scores.get(split)
        if not cells:
            raise SubmissionError(f"missing split '{split}' (the task evaluates {task.eval_splits})", file=path)
        present = {cell.get("hf_subset") for cell in cells}
        missing = sorted(set(task.hf_subsets) - present)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise SubmissionError(f"split '{split}' lacks subsets {shown}", file=path, field=f"scores.{split}")
        for cell in cells:
            if cell.get("main_score") is None:
                raise SubmissionError(
                    f"split '{split}' subset '{cell.get('hf_subset')}' has no main score", file=path, field="main_score"
                )


def submit_results(results: Path, out: Path, *, allow_suffixed_revision: bool = False) -> list[Path]:
    """Check every file of one run, then write ``<out>/results/<org>__<model>/<revision>/`` in one move."""
    revision_dir = _revision_folder(Path(results))
    meta_path = revision_dir / "model_meta.json"
    if not meta_path.is_file():
        raise SubmissionError("no model_meta.json: the leaderboard needs the model's name and revision", file=meta_path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SubmissionError(f"not JSON: {err.msg}", file=meta_path, line=err.lineno) from None
    name, revision = meta.get("name"), meta.get("revision")
    if not name or "/" not in str(name):
        raise SubmissionError("model name must be 'org/model'", file=meta_path, field="name")
    if revision is None or str(revision) in _NO_REVISION or str(revision).startswith("local-"):
        raise SubmissionError(
            "the model has no revision (a hub commit): submit results of a pinned model",
            file=meta_path,
            field="revision",
        )
    marked = "+" in str(revision) or any(str(revision).endswith(f"-{p}") for p in ("bf16", "fp16"))
    if marked and not allow_suffixed_revision:
        raise SubmissionError(
            f"revision '{revision}' marks changed settings (an ablation or reduced precision), not the published model",
            file=meta_path,
            field="revision",
        )
    task_files = sorted(p for p in revision_dir.glob("*.json") if p.name != "model_meta.json")
    if not task_files:
        raise DataError("no task result files to submit", file=revision_dir)
    for path in task_files:
        _check_task_file(path)
    target = Path(out) / "results" / str(name).replace("/", "__") / str(revision)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".submit-", dir=target.parent))
    try:
        for path in task_files:
            shutil.copy2(path, staging / path.name)
        write_json(staging / "model_meta.json", meta)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [target / p.name for p in task_files] + [target / "model_meta.json"]
