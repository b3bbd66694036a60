"""Atomic writes: a failed write keeps the old file, a new file gets the usual permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from amplify_agents.files import atomic_write


def test_atomic_write_creates_parents_and_honours_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "a" / "b" / "out.json", lambda fh: fh.write("{}"))
    finally:
        os.umask(old)
    assert path.read_text() == "{}"
    # mkstemp alone would leave 0600: a results file others cannot read.
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")

    def broken(fh) -> None:
        fh.write("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
