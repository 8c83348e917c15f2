"""Memo writes held back while a run checks its inputs: flushed once they pass, dropped when the run is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.cache.memo import deferred_memos, read_memo, write_memo


def test_held_writes_land_only_when_flushed(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "memo"
    with deferred_memos() as memos:
        assert write_memo(root, "kind", "k1", {"a": 1})
        assert not (tmp_path / "cache").exists()  # held: nothing on disk yet, not even the folder
        memos.flush()
        assert read_memo(root, "kind", "k1") == (True, {"a": 1})
        assert write_memo(root, "kind", "k2", [1, 2])  # after the flush: written directly
        assert read_memo(root, "kind", "k2") == (True, [1, 2])


def test_a_refused_run_drops_its_held_writes(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "memo"
    with pytest.raises(ValueError), deferred_memos():
        write_memo(root, "kind", "k1", {"a": 1})
        raise ValueError("refused")
    assert not (tmp_path / "cache").exists()
    assert write_memo(root, "kind", "k1", {"a": 1}) and read_memo(root, "kind", "k1") == (True, {"a": 1})
