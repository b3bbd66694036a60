"""Task files with bad input: every problem is named with its file and row, nothing changes silently.

Each test writes a real file in tmp_path and loads it with :func:`load_task`; each asserts what
the loaders did not do before issue #15 (a bare codec message, a TypeError or RecursionError,
a label space widened by one stray example, a U+2028 splitting a JSONL row, an over-long input
passed on to the model).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amplify_agents.errors import FileEncodingError, TaskFormatError
from amplify_agents.limits import TextLimits
from amplify_agents.tasks import Task, load_task


def _bigbench(path: Path, examples: list[object], **extra: object) -> Path:
    path.write_text(json.dumps({"name": "t", "examples": examples, **extra}), encoding="utf-8")
    return path


def _yes_no(n: int, *, offset: int = 0) -> list[dict[str, object]]:
    return [{"input": f"question {offset + i}", "target_scores": {"yes": i % 2, "no": 1 - i % 2}} for i in range(n)]


# ------------------------------------------------------------------------------ columns
def test_csv_without_the_columns_names_them_and_the_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("question,answer\nIs fire hot?,yes\nIs ice hot?,no\n", encoding="utf-8")
    for on_error in ("raise", "skip"):
        with pytest.raises(TaskFormatError) as info:
            load_task(path, on_error=on_error)
        message = str(info.value)
        assert "no 'input' and no 'label' column" in message
        assert "'question', 'answer'" in message and str(path) in message


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("input,label\nIs fire hot?,yes\nIs ice hot?,no\n".encode("utf-8-sig"))
    task = load_task(path)
    assert [e.input for e in task] == ["Is fire hot?", "Is ice hot?"]


def test_csv_keeps_a_quoted_crlf_and_reports_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'input,label\r\n"two\r\nlines",yes\r\nfine,no\r\nextra,no,surprise\r\n')
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    assert [(p.row, "more than the header" in p.reason) for p in info.value.problems] == [(3, True)]
    task = load_task(path, on_error="skip")
    assert [e.input for e in task] == ["two\r\nlines", "fine"]
    assert all(None not in e.fields for e in task)


# ------------------------------------------------------------------------------ encodings
def test_non_utf8_files_name_the_file_and_line(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    csv_path.write_bytes(b"input,label\nfine,yes\ncaf\xe9,no\n")
    jsonl_path = tmp_path / "t.jsonl"
    jsonl_path.write_bytes(b'{"input": "fine", "label": "yes"}\n{"input": "caf\xe9", "label": "no"}\n')
    bigbench = tmp_path / "task.json"
    bigbench.write_bytes(b'{"examples": [\n{"input": "caf\xe9", "target_scores": {"a": 1, "b": 0}}]}')
    for path, line in ((csv_path, 3), (jsonl_path, 2), (bigbench, 2)):
        with pytest.raises(FileEncodingError, match=rf"{path.name}:{line}: not UTF-8 \(byte 0xe9"):
            load_task(path)


# ------------------------------------------------------------------------------ JSON shapes
def test_jsonl_keeps_u2028_inside_a_string(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rows = [{"input": "one\u2028two\u0085three", "label": "yes"}, {"input": "plain", "label": "no"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    task = load_task(path)
    assert [e.input for e in task] == ["one\u2028two\u0085three", "plain"]


def test_deeply_nested_json_is_a_row_problem_or_a_format_error(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "t.jsonl"
    path.write_text(f'{{"input": "ok", "label": "yes"}}\n{{"input": {deep}, "label": "no"}}\n', encoding="utf-8")
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    assert [p.row for p in info.value.problems] == [2] and "nested too deeply" in info.value.problems[0].reason
    bigbench = tmp_path / "task.json"
    bigbench.write_text(f'{{"examples": {deep}}}', encoding="utf-8")
    with pytest.raises(TaskFormatError, match="nested too deeply"):
        load_task(bigbench)


def test_jsonl_values_that_are_not_text_are_refused_not_repr(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = ['{"input": ["a", "list"], "label": "yes"}', '[1, 2]', '{"input": "ok", "label": true}',
             '{"input": "ok", "label": 1}', '{"input": "x", "label": "no", "choices": 5}']  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = load_task(path, on_error="skip")
    reasons = {p.row: p.reason for p in task.problems}
    assert "is list" in reasons[1] and "not text" in reasons[1]
    assert "not an object" in reasons[2]
    assert "is bool" in reasons[3]
    assert "choices" in reasons[5]
    assert [(e.input, e.label) for e in task] == [("ok", "1")]  # a number reads as its text


# ------------------------------------------------------------------------------ limits
def test_an_over_long_input_is_a_problem_of_its_row(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rows = [
        {"input": "short", "label": "yes"},
        {"input": "x" * 1_000_000, "label": "no"},
        {"input": "b", "label": "no"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    (problem,) = info.value.problems
    assert problem.row == 2 and "1,000,000 characters, over the limit of 32,000" in problem.reason
    task = load_task(path, on_error="skip", limits=TextLimits.for_context(16))
    assert [e.input for e in task] == ["short", "b"]
    with pytest.raises(TaskFormatError, match="label"):
        Task.from_records([{"input": "a", "label": "L" * 600}], name="t")


def test_an_over_long_instruction_is_refused(tmp_path: Path) -> None:
    path = _bigbench(tmp_path / "task.json", _yes_no(4), task_prefix="p" * 9000)
    with pytest.raises(TaskFormatError, match="instruction.*9,000 characters"):
        load_task(path)
    assert load_task(path, limits=TextLimits(max_instruction_chars=10_000)).instruction == "p" * 9000


# ------------------------------------------------------------------------------ BIG-bench scores
def test_non_numeric_target_scores_are_reported_per_example(tmp_path: Path) -> None:
    examples = [*_yes_no(3), {"input": "q", "target_scores": {"yes": "high", "no": 0}}, "not an example"]
    path = _bigbench(tmp_path / "task.json", examples)
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    reasons = {p.row: p.reason for p in info.value.problems}
    assert set(reasons) == {4, 5} and "'high', not a number" in reasons[4] and "not an object" in reasons[5]


def test_a_stray_target_scores_key_does_not_widen_the_label_space(tmp_path: Path) -> None:
    examples = [*_yes_no(5), {"input": "typo", "target_scores": {"Yes": 1, "no": 0}}]
    path = _bigbench(tmp_path / "task.json", examples)
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    (problem,) = info.value.problems
    assert problem.row == 6 and "differ from the task's label space" in problem.reason
    task = load_task(path, on_error="skip")
    assert task.labels == ("yes", "no") and len(task) == 5 and all(e.choices is None for e in task)
    # A task whose examples each score their own options (no key set held by most) keeps them.
    options = [("red", "blue"), ("cat", "dog", "owl"), ("up", "down")]
    examples = [
        {"input": f"q{i}", "target_scores": {a: 1, **{b: 0 for b in rest}}} for i, (a, *rest) in enumerate(options)
    ]
    task = load_task(_bigbench(tmp_path / "mc.json", examples))
    assert [task.labels_for(e) for e in task] == options
    assert task.labels == ("red", "blue", "cat", "dog", "owl", "up", "down")


def test_labels_fix_the_label_space_of_a_bigbench_task(tmp_path: Path) -> None:
    path = _bigbench(tmp_path / "task.json", _yes_no(4))
    assert load_task(path, labels=["no", "yes"]).labels == ("no", "yes")
    with pytest.raises(TaskFormatError) as info:
        load_task(path, labels=["yes", "no", "maybe"])
    assert len(info.value.problems) == 4
    with pytest.raises(TaskFormatError, match="more than once"):
        load_task(path, labels=["yes", "yes"])
