"""Leaderboard submission: copy a run's result files into the embeddings-benchmark/results layout, checked first.

The results repository's CI rejects files that are incomplete or unloadable; checking here means the pull request
does not bounce. Refused (one line each, exit 2, nothing written): a ``model_meta.json`` that is not mteb's
``ModelMeta`` (read as mteb reads it), a model without a revision, an experiment (a run with changed settings:
``<revision>/experiments/<name>/``, ``experiment_kwargs`` in its metadata, or a revision folder an older evalkit
suffixed, ``-bf16``, ``+pooling-cls``) — never the model's own result —, a task mteb does not know, a missing
evaluation split or subset (a run of some languages only), a non-finite score, a file mteb's own loader cannot
read.

The model name and revision in ``model_meta.json`` become folder names, so each must be one safe component
(``org/model`` → ``org__model``). An existing target folder is replaced only when evalkit submit wrote it and it is
unchanged since (its manifest, ``.evalkit-submit.sha256``, lists every file in it with its checksum): nothing
else under ``--out``, and nothing outside it, is ever removed.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from evalkit.errors import DataError, EvalkitError, SpecError
from evalkit.results.atomic import write_json, write_text
from evalkit.results.folders import is_experiment_folder, revision_folder
from evalkit.results.model_meta import validate_model_meta
from evalkit.results.record import read_object, read_task_record
from evalkit.results.task_score import expected_of_task
from evalkit.safe_paths import ensure_within, safe_component

_NO_REVISION = {"", "no_revision_available", "external"}
MANIFEST = ".evalkit-submit.sha256"  # no .json suffix: mteb's loaders read every *.json of a revision folder


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
    """Refuse what the leaderboard would: a non-finite score anywhere, a task mteb does not know, a file mteb cannot
    load, and a task whose score the one rule finds missing (a split, a subset or a main score)."""
    import mteb

    record = read_task_record(path)  # NaN / Infinity are read, then refused
    if (record.record or {}).get("subset") is not None:  # also an experiment, refused above: said plainly here
        raise SubmissionError("a quick subset's score, not the full task's: never submitted", file=path, field="subset")
    try:
        where = _non_finite(record.scores)
    except RecursionError:
        raise SubmissionError("scores nested too deeply", file=path, field="scores") from None
    if where:
        raise SubmissionError(f"non-finite score at scores.{where}", file=path, field=f"scores.{where}")
    try:
        task = mteb.get_task(record.name)
    except Exception:
        message = f"unknown task '{record.name}' (not an mteb task)"
        raise SubmissionError(message, file=path, field="task_name") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mteb.TaskResult.from_disk(path)
    except Exception as err:
        raise SubmissionError(f"mteb cannot load it: {' '.join(str(err).split())[:200]}", file=path) from None
    score, why = record.score(expected_of_task(task))
    if score is None:
        raise SubmissionError(f"{record.name}: {why}", file=path, field="scores")


def _check_meta(meta_path: Path, meta: dict[str, Any]) -> None:
    """mteb's ``ModelMeta`` as mteb's result cache reads it, and the model's own settings (no experiment)."""
    try:
        validate_model_meta(meta_path.read_bytes(), file=meta_path)
    except SpecError as err:
        raise SubmissionError(err.message, file=meta_path, field=err.field) from None
    if meta.get("experiment_kwargs"):
        raise SubmissionError(
            "an experiment (changed settings), not the model's own result: never submitted",
            file=meta_path,
            field="experiment_kwargs",
        )


def _identity(meta_path: Path) -> tuple[dict[str, Any], str, str]:
    """(metadata, model folder ``org__model``, revision), each folder name checked to be one safe component."""
    meta = read_object(meta_path, "model metadata")
    name, revision = meta.get("name"), meta.get("revision")
    if not isinstance(name, str) or name.count("/") != 1:
        raise SubmissionError("model name must be 'org/model'", file=meta_path, field="name")
    for part in name.split("/"):
        safe_component(part, what="model name part", file=meta_path, field="name")
    folder = safe_component(name.replace("/", "__"), what="model folder", file=meta_path, field="name")
    if not isinstance(revision, str) or revision in _NO_REVISION or revision.startswith("local-"):
        raise SubmissionError(
            "the model has no revision (a hub commit): submit results of a pinned model",
            file=meta_path,
            field="revision",
        )
    safe_component(revision, what="revision", file=meta_path, field="revision")
    if "+" in revision or any(revision.endswith(f"-{p}") for p in ("bf16", "fp16")):
        raise SubmissionError(
            f"revision '{revision}' marks changed settings (an ablation or reduced precision), not the published model",
            file=meta_path,
            field="revision",
        )
    _check_meta(meta_path, meta)
    return meta, folder, revision


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(folder: Path) -> str:
    return "".join(f"{_digest(p)}  {p.name}\n" for p in sorted(folder.iterdir()) if p.name != MANIFEST)


def _check_replaceable(target: Path) -> None:
    """Refuse to touch ``target`` unless it is a plain folder that submit wrote and nobody changed since."""
    refusal = SubmissionError(
        "already exists and was not written by evalkit submit (or was changed since): remove it yourself, "
        "or choose another --out",
        file=target,
    )
    if target.is_symlink() or not target.is_dir():
        raise refusal
    entries = list(target.iterdir())
    if any(p.is_symlink() or not p.is_file() for p in entries) or not (target / MANIFEST).is_file():
        raise refusal
    if (target / MANIFEST).read_text(encoding="utf-8", errors="replace") != _manifest(target):
        raise refusal


def _plain_folder(path: Path, root: Path) -> None:
    """``path``, when it exists, must be a real folder inside ``root``: never written through a link."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise SubmissionError("exists and is not a plain folder: refusing to write there", file=path)
    ensure_within(root, path, what="output folder")


def _install(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; a previous submission there is set aside first and removed after."""
    if not target.exists():
        staging.rename(target)
        return
    _check_replaceable(target)
    previous = Path(tempfile.mkdtemp(prefix=".submit-previous-", dir=target.parent))
    previous.rmdir()
    target.rename(previous)
    try:
        staging.rename(target)
    except OSError:
        previous.rename(target)
        raise
    shutil.rmtree(previous)


def _model_run(results: Path) -> Path:
    """The one run folder ``results`` leads to, when it is the model's own run (not an experiment) with metadata."""
    revision_dir = revision_folder(results)
    if is_experiment_folder(revision_dir):
        raise SubmissionError(
            "an experiment (changed settings), not the model's own result: never submitted", file=revision_dir
        )
    meta_path = revision_dir / "model_meta.json"
    if not meta_path.is_file():
        raise SubmissionError("no model_meta.json: the leaderboard needs the model's name and revision", file=meta_path)
    return revision_dir


def submit_results(results: Path, out: Path) -> list[Path]:
    """Check every file of one run, then write ``<out>/results/<org>__<model>/<revision>/`` in one move.

    An experiment (changed settings, under ``experiments/``) is never submitted as the model's own result."""
    revision_dir = _model_run(Path(results))
    meta, folder, revision = _identity(revision_dir / "model_meta.json")
    task_files = sorted(p for p in revision_dir.glob("*.json") if p.name != "model_meta.json")
    if not task_files:
        raise DataError("no task result files to submit", file=revision_dir)
    for path in task_files:
        ensure_within(revision_dir, path, what="task result file")
        _check_task_file(path)
    out = Path(out)
    target = out / "results" / folder / revision
    for path in (out / "results", target.parent, target):
        _plain_folder(path, out)
    if target.exists():
        _check_replaceable(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".submit-", dir=target.parent))
    except OSError as err:
        raise SubmissionError(f"cannot create the output folder: {err.strerror or err}", file=target.parent) from None
    try:
        for path in task_files:
            shutil.copyfile(path, staging / path.name)
        write_json(staging / "model_meta.json", meta)
        write_text(staging / MANIFEST, _manifest(staging))
        _install(staging, target)
    except OSError as err:
        raise SubmissionError(f"cannot write the submission: {err.strerror or err}", file=target) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [target / p.name for p in task_files] + [target / "model_meta.json"]
