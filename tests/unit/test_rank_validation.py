"""The cross-task choice rule of issue 16: mean validation rank, test runs ignored."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rank_validation", ROOT / "benchmarks" / "rank_validation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root: Path, tag: str, task: str, runs: list[tuple[str, str, float]]) -> None:
    folder = root / tag / task
    folder.mkdir(parents=True)
    records = {
        f"{method}|{i}": {"task": task, "method": method, "evaluated_on": split, "balanced_accuracy": score}
        for i, (method, split, score) in enumerate(runs)
    }
    (folder / "results.json").write_text(json.dumps({"runs": records}))


def test_mean_rank_over_tasks_decides_and_test_runs_do_not_count(tmp_path: Path) -> None:
    rank = _module()
    _write(tmp_path, "4shot", "a", [("io", "validation", 0.6), ("amp", "validation", 0.7), ("amp", "test", 0.0)])
    _write(tmp_path, "4shot", "b", [("io", "validation", 0.6), ("amp", "validation", 0.5)])
    _write(tmp_path, "8shot", "a", [("io", "validation", 0.8)])
    _write(tmp_path, "8shot", "b", [("io", "validation", 0.6)])
    scores = rank.validation_scores(tmp_path)
    assert scores[("4shot/amp", "a")] == [0.7]  # the test run is not read
    rows = rank.rank_table(scores).splitlines()[2:]
    # a: 8shot/io 1, 4shot/amp 2, 4shot/io 3; b: 4shot/io and 8shot/io tie at 1.5, 4shot/amp 3.
    # Means: 8shot/io 1.25, 4shot/io 2.25, 4shot/amp 2.50.
    assert rows[0].startswith("| 8shot/io |") and rows[0].endswith("| 1.25 |")
    assert rows[1].startswith("| 4shot/io |") and rows[1].endswith("| 2.25 |")
    assert rows[2].startswith("| 4shot/amp |") and rows[2].endswith("| 2.50 |")


def test_a_configuration_missing_on_a_task_is_listed_but_not_ranked(tmp_path: Path) -> None:
    rank = _module()
    _write(tmp_path, "4shot", "a", [("io", "validation", 0.6), ("amp", "validation", 0.7)])
    _write(tmp_path, "4shot", "b", [("io", "validation", 0.6)])
    table = rank.rank_table(rank.validation_scores(tmp_path))
    assert "| 4shot/amp | 70.0 (n=1) |  | not on every task |" in table
    assert table.splitlines()[2].startswith("| 4shot/io |")
