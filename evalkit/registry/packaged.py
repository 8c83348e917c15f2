"""Weights a Python package carries: where they are, and whether they are the hub revision their entry names."""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from typing import Any


def packaged_weights(spec: Any) -> Path | None:
    """The local copy of a registry model's weights carried by a Python package, if that package is installed.

    The folder is the package's ``get_model_path()`` or, for a package that only ships files, its own folder; it
    counts when it holds the model's ONNX graph (``onnx_file``) or else a ``config.json``.
    """
    if spec.packaged_in is None:
        return None
    marker = spec.onnx_file or "config.json"
    located = _package_folder(spec.packaged_in)  # found without running the package (its __init__ may load torch)
    if located is not None and (located / marker).is_file():
        return located
    try:
        module = importlib.import_module(spec.packaged_in)
    except ImportError:
        return None
    if hasattr(module, "get_model_path"):
        folder: Path | None = Path(module.get_model_path())
    elif getattr(module, "__file__", None):
        folder = Path(module.__file__).parent
    else:  # a data folder inside a package (a namespace package: no __init__.py, no __file__)
        folder = Path(next(iter(module.__path__))) if getattr(module, "__path__", None) else None
    if folder is not None and folder.is_file():  # a package pointing at its model file, not a folder
        folder = folder.parent
    return folder if folder is not None and (folder / marker).is_file() else None


def _package_folder(dotted: str) -> Path | None:
    """The folder of ``top.sub.data`` found from the top package's location alone, importing nothing."""
    import importlib.util

    top, *rest = dotted.split(".")
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if not locations:
        return None
    folder = Path(locations[0]).joinpath(*rest)
    return folder if folder.is_dir() else None


def checked_packaged(spec: Any, folder: Path) -> Any:
    """``spec`` filed under the hub revision it claims only when the packaged files match their pinned SHA-256
    (``files_sha256``); otherwise under ``local-<hash>``, with a warning that names the files that differ."""
    if not spec.revision:  # nothing claimed (a packaged ONNX graph, SPLADE-tiny): filed by its own hash already
        return spec
    from evalkit.registry.provenance import check_packaged

    checked = check_packaged(spec, folder)
    if checked.matched:
        origin = f"{spec.origins.get('revision', 'registry')}; the packaged files match its SHA-256 pins"
        return replace(spec, origins={**spec.origins, "revision": origin})
    origins = {**spec.origins, "revision": "local: the packaged files differ from the hub revision's pins"}
    return replace(spec, revision=checked.revision, origins=origins, warnings=(*spec.warnings, checked.warning))
