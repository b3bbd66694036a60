"""Task loaders, splits and malformed-row reporting."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from amplify_agents.errors import TaskFormatError
from amplify_agents.tasks import Task, load_task

TASKS = ("snarks", "causal_judgment", "implicatures", "sports_understanding")


@pytest.mark.parametrize("name", TASKS)
def test_bigbench_task_loads_with_its_label_space(bigbench_dir: Path, name: str) -> None:
    raw = json.loads((bigbench_dir / name / "task.json").read_text())
    task = load_task(bigbench_dir / name)
    assert len(task) == len(raw["examples"])
    assert set(task.labels) == set(raw["examples"][0]["target_scores"])
    # Every gold label is the key scored 1 in target_scores.
    for ex, row in zip(task, raw["examples"]):
        assert row["target_scores"][ex.label] == max(row["target_scores"].values())
        assert ex.input == row["input"]
    assert task.instruction == raw.get("task_prefix", "")
    assert len({e.id for e in task}) == len(task)


def test_split_is_deterministic_disjoint_and_order_independent(bigbench_dir: Path) -> None:
    task = load_task(bigbench_dir / "snarks")
    a = task.split(seed=3, test=50, validation=20)
    b = task.split(seed=3, test=50, validation=20)
    reversed_task = task.with_examples(reversed(task.examples))
    c = reversed_task.split(seed=3, test=50, validation=20)
    ids = lambda t: [e.id for e in t]  # noqa: E731
    assert ids(a.test) == ids(b.test) == ids(c.test)
    assert (len(a.test), len(a.validation), len(a.pool)) == (50, 20, len(task) - 70)
    assert not set(ids(a.test)) & set(ids(a.pool)) and not set(ids(a.test)) & set(ids(a.validation))
    assert ids(task.split(seed=4, test=50).test) != ids(a.test)


def test_split_too_large_is_refused(bigbench_dir: Path) -> None:
    task = load_task(bigbench_dir / "snarks")
    with pytest.raises(ValueError, match="do not fit"):
        task.split(test=150, validation=50)


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_reports_each_malformed_row_by_number(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "t.jsonl",
        [
            {"id": "1", "input": "good one", "label": "yes"},
            {"id": "2", "label": "yes"},  # row 2: no input
            {"id": "3", "input": "no gold"},  # row 3: no label
            {"id": "4", "input": "bad gold", "label": "maybe"},  # row 4: outside label space
            {"id": "1", "input": "dup", "label": "no"},  # row 5: duplicate id
            "{not json",  # row 6
            {"id": "7", "input": "fine", "label": "no"},
        ],
    )
    with pytest.raises(TaskFormatError) as info:
        load_task(path, labels=["yes", "no"])
    rows = {p.row: p.reason for p in info.value.problems}
    assert set(rows) == {2, 3, 4, 5, 6}
    assert "missing input" in rows[2] and "missing gold" in rows[3]
    assert "maybe" in rows[4] and "duplicate id" in rows[5] and "JSON" in rows[6]
    assert "row 4" in str(info.value)

    task = load_task(path, labels=["yes", "no"], on_error="skip")
    assert [e.id for e in task] == ["1", "7"]
    assert [p.row for p in task.problems] == [2, 3, 4, 5, 6]  # skipped, not silently dropped


def test_csv_loader_with_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("question,answer\nIs fire hot?,yes\n,no\nIs ice hot?,no\n")
    with pytest.raises(TaskFormatError, match="row 2"):
        load_task(path, input_key="question", label_key="answer")
    task = load_task(path, input_key="question", label_key="answer", on_error="skip")
    assert task.labels == ("yes", "no") and [e.input for e in task] == ["Is fire hot?", "Is ice hot?"]


def test_bigbench_without_unique_gold_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    path.write_text(
        json.dumps(
            {
                "examples": [
                    {"input": "a", "target_scores": {"x": 1, "y": 0}},
                    {"input": "b", "target_scores": {"x": 0, "y": 0}},
                    {"input": "c"},
                ]
            }
        )
    )
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    assert [p.row for p in info.value.problems] == [2, 3]
    assert len(load_task(path, on_error="skip")) == 1


def test_records_and_empty_source() -> None:
    task = Task.from_records([{"input": "x", "label": "a"}, {"input": "y", "label": "b"}], name="t")
    assert task.labels == ("a", "b") and len({e.id for e in task}) == 2
    with pytest.raises(TaskFormatError, match="empty"):
        Task.from_records([], name="t")
    assert Counter(e.label for e in task) == {"a": 1, "b": 1}


def test_split_for_proxy_is_disjoint_seeded_and_order_free() -> None:
    from amplify_agents.tasks import Example, Task

    examples = tuple(Example(f"e{i}", f"text {i}", "a" if i % 2 else "b") for i in range(10))
    task = Task("t", ("a", "b"), examples)
    train, rest = task.split_for_proxy(0.3, seed=1)
    assert (len(train), len(rest)) == (3, 7)
    assert not {e.id for e in train} & {e.id for e in rest}
    assert {e.id for e in train} | {e.id for e in rest} == {e.id for e in examples}
    shuffled = task.with_examples(reversed(examples))
    assert [e.id for e in shuffled.split_for_proxy(0.3, seed=1)[0]] == [e.id for e in train]
    assert [e.id for e in task.split_for_proxy(0.3, seed=2)[0]] != [e.id for e in train]
    assert len(task.split_for_proxy(0.99, seed=0)[1]) == 1  # both parts keep at least one example
