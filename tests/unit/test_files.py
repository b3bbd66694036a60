"""Atomic writes keep the old file on failure; JSON Lines round-trip any text and name bad lines."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amplify_agents.errors import FileEncodingError
from amplify_agents.files import atomic_write, json_line, loads_line, read_lines


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


# Any str, lone surrogates and every line-break character included (hypothesis's default text
# leaves surrogates out; a JSON import can produce them).
_ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["input", "label", "rationale"]), _ANY_TEXT), max_size=5))
def test_json_lines_round_trip_any_text(tmp_path_factory: pytest.TempPathFactory, records: list[dict]) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "records.jsonl"
    atomic_write(path, lambda fh: fh.writelines(json_line(r) for r in records))
    assert [loads_line(line) for _, line in read_lines(path)] == records
    assert path.read_text(encoding="utf-8").count("\n") == len(records)  # one line per record


def test_read_lines_names_the_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(FileEncodingError, match=r"bad\.jsonl:2: not UTF-8 \(byte 0xe9 at column 11\)"):
        list(read_lines(path))


def test_loads_line_turns_deep_nesting_into_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        loads_line("[" * 100_000 + "]" * 100_000)
