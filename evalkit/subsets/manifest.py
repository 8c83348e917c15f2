"""A quick subset's manifest: what was kept of a task, by which rule, from which data; content-addressed.

The manifest is a JSON file ``<subsets_dir>/<name>.json`` holding ids, never texts (the full task is loaded as usual
and filtered, so no data licence is copied). ``manifest_sha256`` is the SHA-256 of the canonical JSON of everything
in it but its name and that checksum: the same rule, parameters, pool runs and source data give the same checksum,
so a baseline and a candidate provably ran on the same subset. The default name is ``<Task>-quick-<sha[:12]>``.
A manifest read back is checked whole (shape, checksum, name) before anything trusts it: it may have been edited.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from evalkit.errors import DataError, EvalkitError
from evalkit.results.atomic import write_json
from evalkit.safe_paths import child, safe_component

FORMAT = "evalkit-subset-v1"
RULES = ("hard-negatives", "stratified", "query-sample")
SUBSETS_DIR_ENV = "EVALKIT_SUBSETS_DIR"
DEFAULT_DEPTH = 250  # mteb's HardNegatives tasks: the top 250 of each pooling retriever
DEFAULT_MAX_QUERIES = 1000  # ... and at most 1,000 queries
DEFAULT_MAX_ITEMS = 1000  # pairs per split for STS and pair classification
DEFAULT_SEED = 42
_UNHASHED = ("name", "manifest_sha256")
_REQUIRED = ("format", "task", "task_type", "rule", "parameters", "pool", "source", "selection")


class SubsetError(EvalkitError):
    """A subset cannot be built, read or applied as asked (exit 2)."""


def default_subsets_dir(subsets_dir: str | Path | None = None) -> Path:
    """``subsets_dir`` if given, else ``$EVALKIT_SUBSETS_DIR``, else ``./subsets``."""
    if subsets_dir is not None:
        return Path(subsets_dir)
    return Path(os.environ.get(SUBSETS_DIR_ENV) or "subsets")


def canonical_sha256(content: dict[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON (sorted keys, no spaces), its name and checksum left out."""
    hashed = {k: v for k, v in content.items() if k not in _UNHASHED}
    text = json.dumps(hashed, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_name(name: object, *, field: str = "name", file: Path | None = None) -> str:
    """A subset name becomes a file name: one safe component, plain (no leading dot, no ``.json`` to strip)."""
    safe_component(name, what="subset name", field=field, file=file)
    assert isinstance(name, str)
    if name.startswith(".") or name.endswith(".json"):
        raise SubsetError(f"subset name {name[:80]!r} must not start with '.' or end with '.json'", field=field)
    return name


def finalize(content: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The manifest: ``content`` with its checksum and its name (default ``<Task>-quick-<sha[:12]>``)."""
    sha = canonical_sha256(content)
    name = check_name(name, field="--name") if name is not None else f"{content['task']}-quick-{sha[:12]}"
    check_name(name)
    return {"name": name, "manifest_sha256": sha, **{k: v for k, v in content.items() if k not in _UNHASHED}}


def manifest_path(name: str, subsets_dir: str | Path | None = None) -> Path:
    """Where the manifest named ``name`` lives (the name checked first)."""
    root = default_subsets_dir(subsets_dir)
    return child(root, f"{check_name(name)}.json", what="subset name")


def write_manifest(manifest: dict[str, Any], subsets_dir: str | Path | None = None) -> Path:
    """Write the manifest whole (atomically) and return its path."""
    path = manifest_path(manifest["name"], subsets_dir)
    write_json(path, manifest)
    return path


def read_manifest(name: str, subsets_dir: str | Path | None = None) -> dict[str, Any]:
    """The manifest named ``name``, checked: its shape, its name, and that its checksum matches its content."""
    path = manifest_path(name, subsets_dir)
    if not path.is_file():
        raise SubsetError(f"no subset named {name!r} (looked for {path}; `evalkit subset build` makes one)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"not a readable subset manifest: {' '.join(str(err).split())[:160]}", file=path) from None
    check_manifest(manifest, path, expected_name=name)
    return manifest


def check_manifest(manifest: object, path: Path, *, expected_name: str | None = None) -> None:
    """Refuse a manifest that is malformed, renamed, or whose content does not match its checksum (tampered)."""
    if not isinstance(manifest, dict):
        raise DataError("a subset manifest must be a JSON object", file=path)
    for key in _REQUIRED:
        if key not in manifest:
            raise DataError(f"missing '{key}'", file=path, field=key)
    if manifest["format"] != FORMAT:
        raise DataError(
            f"unknown manifest format {manifest['format']!r} (expected {FORMAT})", file=path, field="format"
        )
    if manifest["rule"] not in RULES:
        raise DataError(f"unknown rule {manifest['rule']!r}", file=path, field="rule")
    check_name(manifest.get("name"), file=path)
    if expected_name is not None and manifest["name"] != expected_name:
        raise DataError(f"names subset {manifest['name']!r}, not {expected_name!r} (renamed?)", file=path, field="name")
    safe_component(manifest["task"], what="task name", file=path, field="task")
    try:
        sha = canonical_sha256(manifest)
    except (TypeError, ValueError) as err:
        raise DataError(f"not canonical JSON: {err}", file=path) from None
    if manifest.get("manifest_sha256") != sha:
        raise DataError(
            "content does not match its manifest_sha256 (edited since it was built): rebuild the subset",
            file=path,
            field="manifest_sha256",
        )
    _check_types(manifest, path)
    _check_selection(manifest, path)


def _check_types(manifest: dict[str, Any], path: Path) -> None:
    """The fields every reader uses, of the types it expects (a hand-made manifest may carry a matching checksum)."""
    if not isinstance(manifest["parameters"], dict):
        raise DataError("'parameters' must be an object", file=path, field="parameters")
    pool = manifest["pool"]
    if not isinstance(pool, list) or not all(
        isinstance(run, dict) and isinstance(run.get("label"), str) and isinstance(run.get("sha256"), str)
        for run in pool
    ):
        raise DataError("'pool' must be a list of {label, sha256, ...}", file=path, field="pool")
    source = manifest["source"]
    if not isinstance(source, dict) or not isinstance(source.get("content_sha256"), str):
        raise DataError("'source.content_sha256' must be a string", file=path, field="source.content_sha256")
    if not isinstance(manifest.get("subset_content_sha256"), str):
        raise DataError("'subset_content_sha256' must be a string", file=path, field="subset_content_sha256")


def _check_sizes(sizes: object, names: tuple[str, ...], path: Path, where: str) -> None:
    for name in names:
        value = sizes.get(name) if isinstance(sizes, dict) else None
        if not isinstance(value, dict) or not all(type(value.get(k)) is int for k in ("kept", "full")):
            raise DataError(f"'sizes.{name}' must be {{kept, full}} counts", file=path, field=f"{where}.sizes")


def _check_selection(manifest: dict[str, Any], path: Path) -> None:
    selection = manifest["selection"]
    if not isinstance(selection, list) or not selection:
        raise DataError("'selection' must be a non-empty list", file=path, field="selection")
    keys = {"retrieval": ("queries", "docs"), "pairs": ("rows",), "reranking": ("queries",)}
    sizes = {"retrieval": ("queries", "docs"), "pairs": ("rows",), "reranking": ("queries",)}
    for index, entry in enumerate(selection):
        where = f"selection[{index}]"
        if not isinstance(entry, dict) or entry.get("kind") not in keys:
            raise DataError("each selection needs a 'kind' (retrieval, pairs, reranking)", file=path, field=where)
        for key in ("hf_subset", "split"):
            if not isinstance(entry.get(key), str):
                raise DataError(f"'{key}' must be a string", file=path, field=f"{where}.{key}")
        for key in keys[entry["kind"]]:
            values = entry.get(key)
            wanted = int if key == "rows" else str
            if not isinstance(values, list) or not all(type(v) is wanted for v in values):
                raise DataError(f"'{key}' must be a list of {wanted.__name__}", file=path, field=f"{where}.{key}")
        _check_sizes(entry.get("sizes"), sizes[entry["kind"]], path, where)


def subset_record(manifest: dict[str, Any]) -> dict[str, str]:
    """The run record's ``subset`` entry: what ``diff`` compares and ``submit`` refuses."""
    return {"name": manifest["name"], "manifest_sha256": manifest["manifest_sha256"], "rule": manifest["rule"]}


__all__ = [
    "FORMAT",
    "RULES",
    "SUBSETS_DIR_ENV",
    "SubsetError",
    "canonical_sha256",
    "check_manifest",
    "check_name",
    "default_subsets_dir",
    "finalize",
    "manifest_path",
    "read_manifest",
    "subset_record",
    "write_manifest",
]
