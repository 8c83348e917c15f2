"""Which files of a model folder change its vectors, and one fingerprint over them.

Kept free of torch so the registry (packaged-weights provenance) and the encoders share one definition: a file
counted here is one a loader may read, and editing it names another cache namespace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from evalkit.errors import UnknownModelError
from evalkit.loaders.checksums import file_sha256

WEIGHT_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_NOT_READ_SUFFIXES = (*WEIGHT_PICKLE_SUFFIXES, ".md", ".onnx", ".h5", ".msgpack", ".ot", ".png", ".jpg", ".gif")
_NOT_READ_NAMES = (".gitattributes", ".gitignore", "LICENSE", "LICENSE.txt", "NOTICE")


def read_files(folder: Path, *, modules: bool = True) -> Iterator[Path]:
    """Every file of ``folder`` that a loader may read: the top level (weights, configs, every tokenizer file) and
    the sentence-transformers module folders (``1_Pooling``, ``2_Dense``, ...), less what no loader here reads
    (docs, pickled or ONNX weights). A file we cannot rule out counts: an extra file costs a re-encode, a missed
    one serves stale vectors."""
    for path in folder.iterdir():
        if path.name.startswith(".") or path.name in _NOT_READ_NAMES:
            continue
        if path.is_file() and path.suffix not in _NOT_READ_SUFFIXES:
            yield path
        elif modules and path.is_dir() and path.name[:1].isdigit() and "_" in path.name:  # 1_Pooling, 2_Dense...
            yield from (p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def weights_fingerprint(folder: Path, *, modules: bool = True) -> str:
    """SHA-256 over every file that changes a vector (weights, model and tokenizer configs, vocabularies, special
    tokens, module configs), each with its path relative to the folder, in a stable order: editing any of them
    names another cache namespace, so vectors of the old files are never served for the new ones.

    ``modules=False`` leaves the sentence-transformers module folders out: what the transformer alone reads, which
    keys its exported graph (models that differ only in pooling or Dense modules share one)."""
    digest = hashlib.sha256()
    for path in sorted(read_files(folder, modules=modules), key=lambda p: p.relative_to(folder).as_posix()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()


def require_safetensors(folder: Path) -> None:
    """Refuse a folder whose only weights are pickled (unpickling can run code): asked by the run's preflight,
    before any work, and again by every transformers encoder (a model object is built without a preflight)."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_PICKLE_SUFFIXES)
    pickled = [p for p in pickled if p.name not in ("sparse_linear.pt", "colbert_linear.pt", "training_args.bin")]
    if pickled:
        raise UnknownModelError(
            "pickled weights are not loaded; convert to safetensors (e.g. `model.save_pretrained(folder, "
            "safe_serialization=True)`)",
            file=pickled[0],
        )
