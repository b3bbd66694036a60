"""Atomic writes: a failed write keeps the old file, a new file gets the usual permissions."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from amplify_agents.files import atomic_write


def test_atomic_write_creates_parents_and_gets_the_permissions_open_gives(tmp_path: Path) -> None:
    path = atomic_write(tmp_path / "a" / "b" / "out.json", lambda fh: fh.write("{}"))
    assert path.read_text() == "{}"
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    # mkstemp alone would leave 0600: a results file others cannot read.
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


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
