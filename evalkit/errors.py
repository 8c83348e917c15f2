"""One exception family for everything a user can get wrong.

Each error carries the file, line and field that went wrong, so the CLI can print one line that points at the
problem and exit with code 2 instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class EvalkitError(Exception):
    """Bad input or configuration. ``str(err)`` is the one-line message the CLI prints."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [p for p in (where, f"field '{self.field}'" if self.field else "") if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class DataError(EvalkitError):
    """A data file is malformed or inconsistent (bad JSON, a missing column, a qrel naming an unknown doc)."""


class MissingDataError(EvalkitError):
    """A task's data was not found in any of the places looked at."""


class SpecError(EvalkitError):
    """A task or model spec file is malformed."""


class UnknownTaskError(EvalkitError):
    """A task name that no spec and no mteb task defines."""


class UnknownModelError(EvalkitError):
    """A model that is neither in the registry, a local folder, nor a reachable hub id."""


EXIT_INTERNAL = 70
"""A bug in evalkit (sysexits' EX_SOFTWARE): never 1 (``diff``'s "regression") nor 2 (bad input)."""

EXIT_BROKEN_PIPE = 141
"""The reader of stdout went away (``| head``): 128 + SIGPIPE, as a shell reports it; no verdict, no bug."""


class UnsafeNameError(DataError):
    """A name read from a file or given by a user would not be one safe path component."""
