"""A warm run costs its work, not its start-up: the model is resolved and fingerprinted from memos, and its
encoder (torch, transformers, the tokenizer, the weights) is built only when a text misses the embedding cache.

Two memos (:mod:`evalkit.cache.memo`), each exact or absent:

- **the resolved model** (``resolve_model``: models.yaml merged with mteb's registry and the folder's configs, the
  packaged files checked against their pins), for a registry model with packaged weights; keyed by the name, mteb's
  version, evalkit's code stamp and the Python path, and read only while every file of the model folder has the
  ``stat`` signature it had (device, inode, size, modification and change time);
- **the encoder's fingerprint** (what keys the cache and the run record's ``model``), its runtime choice and
  capabilities, keyed by the resolved spec, the encoding options, the model files' ``stat`` signatures, the
  versions of the libraries that compute vectors, the thread environment and the runtime-probe memos on disk
  (``--runtime auto`` remembers its choice there: a memo removed or rewritten probes again, as it would unmemoised).

Without a memo the encoder is built at once, exactly as before, and the memo is written from it.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from evalkit.cache.memo import memo_key, memo_root, read_memo, stat_signature, write_memo
from evalkit.host import library_version, usable_cores
from evalkit.registry.models import ModelSpec, resolve_model

MODEL_KIND = "resolved-model"
ENCODER_KIND = "encoder-fingerprint"
LAZY_ADAPTERS = ("hf",)  # adapters whose construction imports torch and whose prepare() is plain text
_LIBRARIES = ("torch", "transformers", "tokenizers", "onnxruntime", "openvino", "numpy", "safetensors")
_THREAD_ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "EVALKIT_DEBUG")


def _folder_signature(folder: Path | None) -> list[list[Any]] | None:
    """Every file under the model folder, with its stat signature; None when there is no folder to read."""
    if folder is None:
        return None
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
    except OSError:
        return None
    return stat_signature(files)


def resolve_remembered(model: str, resolve: Callable[[str], ModelSpec] = resolve_model) -> ModelSpec:
    """``resolve(model)``, from the memo when a registry model's packaged folder is unchanged since."""
    root = memo_root()
    key = memo_key(MODEL_KIND, {"model": model, "mteb": library_version("mteb"), "path": list(sys.path)})
    found, remembered = read_memo(root, MODEL_KIND, key)
    if found and isinstance(remembered, dict):
        try:
            spec = ModelSpec(**remembered["spec"])
        except (KeyError, TypeError):
            spec = None
        if spec is not None and remembered.get("files") == _folder_signature(spec.local_path):
            return spec
    spec = resolve(model)
    if spec.source == "registry" and spec.packaged_in and spec.local_path is not None:
        files = _folder_signature(spec.local_path)
        if files is not None:
            write_memo(root, MODEL_KIND, key, {"spec": _spec_fields(spec), "files": files})
    return spec


def _spec_fields(spec: ModelSpec) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


def _probe_memos(artifact_dir: Path | None) -> list[list[Any]]:
    """The runtime-probe memos on disk (``--runtime auto``'s remembered choices), by stat signature."""
    if artifact_dir is None:
        return []
    folder = artifact_dir / "runtime-probe"
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return stat_signature(folder / name for name in names) or []


def _encoder_key(spec: ModelSpec, encoding: Any, artifact_dir: Path | None) -> str | None:
    files = _folder_signature(spec.local_path)
    if files is None:
        return None
    parts = {
        "spec": _spec_fields(spec),
        "encoding": [encoding.device, encoding.precision, encoding.runtime],
        "files": files,
        "libraries": {name: library_version(name) for name in _LIBRARIES},
        "environment": {name: os.environ.get(name) for name in _THREAD_ENVIRONMENT},
        "cores": usable_cores(),
        "artifacts": str(artifact_dir),
        "probe_memos": _probe_memos(artifact_dir),
    }
    return memo_key(ENCODER_KIND, parts)


def build_lazily(
    spec: ModelSpec, encoding: Any, build: Callable[[], Any], *, artifact_dir: Path | None
) -> Any:
    """The encoder ``build()`` makes; for a lazy adapter whose fingerprint is remembered, a stand-in that builds it
    on first real use (a text to tokenize or encode) and answers the rest from the memo."""
    if spec.adapter not in LAZY_ADAPTERS or "," in str(encoding.device):
        return build()
    key = _encoder_key(spec, encoding, artifact_dir)
    remembered = None
    if key is not None:
        found, value = read_memo(memo_root(artifact_dir), ENCODER_KIND, key)
        remembered = value if found and isinstance(value, dict) and _sound(value) else None
    return LazyEncoder(spec, encoding, build, artifact_dir=artifact_dir, remembered=remembered)


def _sound(value: dict[str, Any]) -> bool:
    return (
        isinstance(value.get("fingerprint"), dict)
        and isinstance(value.get("attributes"), list)
        and isinstance(value.get("capabilities"), dict)
    )


def _plain_methods(real: Any) -> list[str]:
    """The encoder's methods defined with ``def`` on its class (read statically: no property is evaluated, so
    nothing is loaded or probed to find them)."""
    methods = []
    for name in dir(type(real)):
        if not name.startswith("_") and inspect.isfunction(inspect.getattr_static(type(real), name, None)):
            methods.append(name)
    return methods


class LazyEncoder:
    """Stands in for an encoder: its fingerprint, capabilities and runtime choice from the memo, everything else
    from the encoder itself, built on first use. Without a memo the encoder is built at once."""

    def __init__(
        self,
        spec: ModelSpec,
        encoding: Any,
        build: Callable[[], Any],
        *,
        artifact_dir: Path | None,
        remembered: dict[str, Any] | None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self._encoding = encoding
        self._build = build
        self._artifact_dir = artifact_dir
        self._remembered = remembered
        self._real: Any = None
        self._first_prepare: tuple[list[str], str] | None = None
        if remembered is None:
            self._real = build()

    @property
    def built(self) -> bool:
        """Whether the encoder itself has been built (a warm run never builds it)."""
        return self._real is not None

    def _encoder(self) -> Any:
        if self._real is None:
            self._real = self._build()
            if self._first_prepare is not None:  # what the run prepared first: an auto runtime probes on it
                self._real.prepare(*self._first_prepare)
        return self._real

    def __getattr__(self, name: str) -> Any:
        remembered = self.__dict__.get("_remembered")
        if name.startswith("__") or "_real" not in self.__dict__:
            raise AttributeError(name)
        if remembered is not None and self._real is None:
            if name in remembered.get("values", {}):
                return remembered["values"][name]
            if name in remembered.get("methods", []):  # bound now (the core takes encoder.tokenize up front), built
                return partial(self._call, name)  # when first called
            if name not in remembered["attributes"]:
                raise AttributeError(name)  # the encoder has no such attribute: not built to find that out
        return getattr(self._encoder(), name)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._encoder(), name)(*args, **kwargs)

    @property
    def capabilities(self) -> Any:
        if self._real is not None or self._remembered is None:
            return self._encoder().capabilities
        from evalkit.encoders.protocol import Capabilities

        fields = dict(self._remembered["capabilities"])
        return Capabilities(**{**fields, "outputs": tuple(fields.get("outputs", ("dense",)))})

    @property
    def runtime_choice(self) -> Any:
        if self._real is not None or self._remembered is None:
            return getattr(self._encoder(), "runtime_choice", None)
        return self._remembered.get("runtime_choice")

    def fingerprint(self) -> dict[str, object]:
        if self._real is None and self._remembered is not None:
            return dict(self._remembered["fingerprint"])
        fingerprint = self._encoder().fingerprint()
        self._remember(fingerprint)
        return fingerprint

    def _remember(self, fingerprint: dict[str, object]) -> None:
        if self._remembered is not None:
            return
        key = _encoder_key(self.spec, self._encoding, self._artifact_dir)  # now: after a probe wrote its memo
        if key is None:
            return
        real = self._real
        choice = getattr(real, "runtime_choice", None)
        if isinstance(choice, dict) and choice.get("reason") == "probed":
            choice = {**choice, "reason": "remembered"}  # what the encoder itself says when it reads its memo
            choice["detail"] = str(choice.get("detail", ""))[:300]
        capabilities = dataclasses.asdict(real.capabilities)
        value = {
            "fingerprint": dict(fingerprint),
            "runtime_choice": choice,
            "capabilities": {**capabilities, "outputs": list(capabilities["outputs"])},
            "attributes": sorted(name for name in dir(real) if not name.startswith("__")),
            "methods": _plain_methods(real),
            "values": {"runtime": real.runtime} if isinstance(getattr(real, "runtime", None), str) else {},
        }
        if write_memo(memo_root(self._artifact_dir), ENCODER_KIND, key, value):
            self._remembered = value

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        """As the encoder prepares texts (the prompt before each), without building it while it can wait."""
        from evalkit.encoders.prompts import prompted_texts

        prepared = prompted_texts(self.spec, texts, prompt) if self._real is None else None
        if prepared is None:
            return self._encoder().prepare(texts, prompt)
        if self._first_prepare is None:
            self._first_prepare = (list(texts[:512]), prompt)
        return prepared
