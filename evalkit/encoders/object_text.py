"""Text-level models over objects a caller holds: an object's ``encode``, a plain callable, an object following
mteb's encoder protocol. The core dedups, caches and batches them by a count of texts; caching needs a name for
the weights (a hash of a torch module's parameters, or the caller's ``revision``), else it is off and a warning
says so once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from evalkit.encoders.protocol import Capabilities, Role
from evalkit.errors import EvalkitError
from evalkit.registry.models import ModelSpec

logger = logging.getLogger("evalkit")

NOT_CACHED = "{name}: an opaque callable with no revision= is not cached (pass revision= to cache its vectors)"


def parameters_sha256(module: Any) -> str:
    """SHA-256 over a torch module's parameters and buffers (names, dtypes, shapes, bytes): a weight changed in
    place names another cache namespace."""
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for key, tensor in module.state_dict().items():
            flat = tensor.detach().reshape(-1).contiguous().cpu()
            digest.update(f"{key}\0{flat.dtype}\0{tuple(tensor.shape)}\0".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def object_fingerprint(obj: Any, revision: str | None) -> dict[str, object] | None:
    """What names an object's vectors: the caller's revision, else a hash of the torch module it is or holds (the
    object, the instance of a bound method, or its ``.model``); ``None`` when there is neither (not cached)."""
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if revision is not None:
        return {"object": kind, "revision": revision}
    module = _torch_module_of(obj)
    if module is None:
        return None
    return {"object": kind, "weights_sha256": parameters_sha256(module)}


class ObjectTextEncoder:
    """A text-level model over a function ``(texts, role) -> array`` (an object's ``encode``, a callable).

    The core dedups, caches (when ``fingerprint`` is known) and batches by a count of texts; evalkit's resolved
    prompt, if any, is prepended to each text.
    """

    def __init__(
        self,
        name: str,
        encode: Callable[[list[str], Role], Any],
        fingerprint: dict[str, object] | None,
        *,
        default_prompt: str = "",
    ) -> None:
        self.name = name
        self._encode = encode
        self._fingerprint = fingerprint
        self._default_prompt = default_prompt
        self.spec = ModelSpec(name=name, adapter="object", source="object")  # prompts: none of evalkit's
        self.capabilities = Capabilities(level="texts", cacheable=fingerprint is not None)
        if fingerprint is None:
            logger.warning(NOT_CACHED.format(name=name))

    @property
    def cache_notice(self) -> str | None:
        """The one line a run prints when this model's vectors are not cached."""
        return None if self.capabilities.cacheable else NOT_CACHED.format(name=self.name)

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        prompt = prompt or self._default_prompt
        return [prompt + text for text in texts] if prompt else list(texts)

    def embed_texts(self, texts: list[str], role: Role) -> np.ndarray:
        return as_float32_rows(self._encode(texts, role))

    def fingerprint(self) -> dict[str, object]:
        if self._fingerprint is None:
            raise EvalkitError(f"model '{self.name}' has no fingerprint: its vectors are not cached")
        return {"model": self.name, "level": "texts", "default_prompt": self._default_prompt, **self._fingerprint}


class MtebObjectEncoder(ObjectTextEncoder):
    """An object following mteb's encoder protocol: texts go in as a DataLoader of ``{"text": [...]}`` batches,
    the role as mteb's ``prompt_type``; the object picks its own prompts, so evalkit adds none.

    mteb's protocol asks for the task's metadata: :meth:`for_task` binds a task (its metadata from mteb's registry,
    and its name in the cache key, since the object's prompts may differ per task); unbound, a stand-in is passed.
    """

    def __init__(self, obj: Any, *, revision: str | None = None, name: str | None = None, task: str = "") -> None:
        self.obj = obj
        self.task = task
        self._revision = revision
        fingerprint = object_fingerprint(obj, revision)
        if fingerprint is not None:
            fingerprint = {**fingerprint, "mteb_task": task}
        super().__init__(name or object_name(obj), self._encode_mteb, fingerprint)

    def for_task(self, task_name: str) -> MtebObjectEncoder:
        """This object bound to one task (the same object, its own cache key)."""
        return MtebObjectEncoder(self.obj, revision=self._revision, name=self.name, task=task_name)

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return list(texts)  # the object resolves its own prompts from the task metadata and prompt type

    def _encode_mteb(self, texts: list[str], role: Role) -> Any:
        from mteb.types import PromptType
        from torch.utils.data import DataLoader

        rows = [{"text": text} for text in texts]
        loader = DataLoader(rows, batch_size=max(1, len(rows)), collate_fn=_text_batch)  # type: ignore[arg-type]
        prompt_type = {"query": PromptType.query, "document": PromptType.document}.get(role)
        metadata = _task_metadata(self.task)
        return self.obj.encode(
            loader, task_metadata=metadata, hf_split="test", hf_subset="default", prompt_type=prompt_type
        )


def as_float32_rows(array: Any) -> np.ndarray:
    """A model's output (numpy, torch, list of vectors) as a float32 ``(n, dim)`` array."""
    if hasattr(array, "detach"):  # a torch tensor: off the graph and the device first
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float32)


def _text_batch(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    return {"text": [row["text"] for row in rows]}


def _task_metadata(task: str) -> Any:
    if task:
        import mteb

        try:
            return mteb.get_task(task).metadata
        except Exception:  # a task mteb does not know gets the stand-in below
            logger.info("mteb has no task '%s'; the object gets stand-in metadata", task)
    return SimpleNamespace(name=task or "evalkit", type="", category=None, modalities=["text"], prompt=None)


def _torch_module_of(obj: Any) -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    for candidate in (obj, getattr(obj, "__self__", None), getattr(obj, "model", None)):
        if isinstance(candidate, torch.nn.Module):
            return candidate
    return None


def object_name(obj: Any) -> str:
    named = getattr(obj, "name_or_path", None) or getattr(obj, "__name__", None)
    return model_name(str(named)) if named else f"object/{type(obj).__name__}"


def model_name(raw: str) -> str:
    """How results name a model object: a hub id as it is (``org/name``), a folder by its last part
    (``local/<folder>``), so a path never becomes a results folder name."""
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if raw.count("/") == 1 and len(parts) == 2 and not raw.startswith(("/", ".")):
        return raw
    return f"local/{parts[-1]}" if parts else "object/unnamed"


__all__ = [
    "NOT_CACHED",
    "MtebObjectEncoder",
    "ObjectTextEncoder",
    "as_float32_rows",
    "object_fingerprint",
    "object_name",
    "parameters_sha256",
]
