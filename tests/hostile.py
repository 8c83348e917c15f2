"""Shared checks for the hostile-input catalogue (``tests/test_hostile_*.py``).

Each hostile test runs a command the way a user would, then asserts the contract: the exit code, one line on
stderr (naming the file / line / field where there is one), and that nothing outside the output folder was
written, removed or changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalkit.cli import main


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The one line the CLI printed for the error (asserts there is exactly one such line)."""
        lines = [line for line in self.stderr.splitlines() if line.startswith("evalkit: ")]
        assert len(lines) == 1, f"expected one 'evalkit:' line on stderr, got: {self.stderr!r}"
        assert "Traceback" not in self.stderr, self.stderr
        return lines[0]


def run_cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    """``evalkit ARGV`` in this process; exit code and what it printed."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` → a digest of its content (folders: 'dir'), to prove nothing changed."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = "dir"
        for name in files:
            path = os.path.join(folder, name)
            try:
                found[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:
                found[os.path.relpath(path, root)] = "unreadable"
    return found
