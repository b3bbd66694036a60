"""EvalConfig's label space reaches the task the harness loads, and the resumable run keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amplify_agents.errors import TaskFormatError
from amplify_agents.eval import EvalConfig, parse_method, run_eval
from amplify_agents.eval.harness import run_key
from amplify_agents.tasks import load_task


def _task_file(tmp_path: Path) -> Path:
    rows = [{"input": f"question {i}", "label": "yes" if i % 2 else "no"} for i in range(8)]
    rows[5]["label"] = "maybe"
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_labels_are_a_tuple_and_survive_a_round_trip(tmp_path: Path) -> None:
    config = EvalConfig(task=str(_task_file(tmp_path)), out_dir=str(tmp_path), labels=["yes", "no"])  # type: ignore[arg-type]
    assert config.labels == ("yes", "no")
    assert EvalConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_the_harness_loads_the_task_with_the_configured_labels(tmp_path: Path) -> None:
    config = EvalConfig(task=_task_file(tmp_path), labels=("yes", "no"), out_dir=tmp_path / "out", methods=("io",))
    # The row outside the label space is refused before any model is loaded.
    with pytest.raises(TaskFormatError, match="maybe"):
        run_eval(config, progress=False)


def test_labels_change_the_run_key_only_when_given(tmp_path: Path) -> None:
    path = _task_file(tmp_path)
    task, spec = load_task(path), parse_method("io")
    plain = run_key(EvalConfig(task=path), task, spec, 0)
    assert run_key(EvalConfig(task=path, labels=None), task, spec, 0) == plain  # earlier results still resume
    assert run_key(EvalConfig(task=path, labels=("yes", "no", "maybe")), task, spec, 0) != plain
