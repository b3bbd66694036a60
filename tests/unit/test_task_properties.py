"""Property tests of the task loaders: what is written is what is read, or the row is named.

Hypothesis writes arbitrary unicode inputs and labels (line separators U+2028/U+0085, CR/LF,
quotes, commas, NUL, byte-order marks, whitespace-only text) as records, a JSONL file and a
CSV file. The loaded task must hold exactly the rows that are valid, in order, unchanged;
every other row must be a :class:`RowProblem` naming it; nothing else may be raised.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from amplify_agents.errors import TaskFormatError
from amplify_agents.files import json_line
from amplify_agents.limits import TextLimits
from amplify_agents.tasks import Task, load_task

_SPECIALS = ["\u2028", "\u2029", "\u0085", "\r", "\n", " ", "\t", "\ufeff", '"', ",", "|", "\x00", "\\"]
_TEXT = st.text(alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(_SPECIALS)), max_size=24)
_LABEL = st.one_of(st.sampled_from(["yes", "no", " ", ""]), st.text(alphabet=st.characters(codec="utf-8"), max_size=4))
_ROWS = st.lists(st.tuples(_TEXT, _LABEL), min_size=1, max_size=8)
_LIMITS = TextLimits(max_input_chars=20, max_label_chars=3)  # small: some generated texts are over them


def _expected(rows: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[int]]:
    """The rows a correct loader keeps (text, label) and the row numbers it must report."""
    kept, bad, seen = [], [], set()
    for row_no, (text, label) in enumerate(rows, start=1):
        ok = text.strip() and label.strip() and len(text) <= 20 and len(label) <= 3 and (text, label) not in seen
        if ok:
            seen.add((text, label))
            kept.append((text, label))
        else:
            bad.append(row_no)
    return kept, bad


def _check(load, rows: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    kept, bad = _expected(rows)
    try:
        task = load()
    except TaskFormatError as exc:
        assert not kept, f"valid rows {kept} were refused: {exc}"
        assert [p.row for p in exc.problems] == bad
        return
    assert [(e.input, e.label) for e in task] == kept
    assert [p.row for p in task.problems] == bad
    assert set(task.labels) == {label for _, label in kept}


@settings(max_examples=150, deadline=None)
@given(_ROWS)
def test_records_round_trip(rows: list[tuple[str, str]]) -> None:
    records = [{"input": text, "label": label} for text, label in rows]
    _check(lambda: Task.from_records(records, name="t", on_error="skip", limits=_LIMITS), rows)


@settings(max_examples=150, deadline=None)
@given(_ROWS, st.booleans())
def test_jsonl_round_trip(rows: list[tuple[str, str]], escaped: bool) -> None:
    # Both writers: json_line (line breaks escaped) and json.dumps (U+2028 and U+0085 left raw).
    write = json_line if escaped else (lambda value: json.dumps(value, ensure_ascii=False) + "\n")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.jsonl"
        path.write_text("".join(write({"input": t, "label": lab}) for t, lab in rows), encoding="utf-8")
        _check(lambda: load_task(path, on_error="skip", limits=_LIMITS), rows)


@settings(max_examples=150, deadline=None)
@given(_ROWS)
def test_csv_round_trip(rows: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["input", "label"])
            writer.writerows(rows)
        _check(lambda: load_task(path, on_error="skip", limits=_LIMITS), rows)
