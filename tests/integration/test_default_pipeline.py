"""The default pipeline on a task the library has never seen, written by this test.

No task-specific code or prompt exists for it: a CSV file with a repeated stem word in
every input ("Report:"), two labels the library has never heard of, and only sizes
changed from the CLI's defaults. It goes through build (SLM predictor, error selection,
Grad x Input on a MiniLM proxy, AMPLIFY's template), select and the evaluation of every
default method, on the real Gemma, MiniLM and Chroma.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplify_agents import cli
from amplify_agents.cli import app
from amplify_agents.eval import DEFAULT_METHODS
from amplify_agents.stores import RationaleStore

pytestmark = pytest.mark.slow

ANIMALS = [
    "a cat slept on the warm mat",
    "the dog barked at the mailman",
    "a horse galloped across the field",
    "the cow gave fresh milk",
    "a small bird sang at dawn",
    "the fox hid in the bushes",
    "a rabbit nibbled the carrots",
    "the sheep grazed on the hill",
    "an owl hooted in the night",
    "the goat climbed the rocks",
    "a duck swam in the pond",
    "the mouse ran under the bed",
]
VEHICLES = [
    "a bus stopped at the corner",
    "the truck carried heavy boxes",
    "a bicycle leaned on the wall",
    "the train arrived late again",
    "a taxi honked in the traffic",
    "the tractor plowed the field",
    "a scooter zipped down the lane",
    "the ferry crossed the bay",
    "a plane landed on the runway",
    "the van parked by the shop",
    "a motorcycle roared past us",
    "the tram rattled along the rails",
]
LABELS = ("creature", "machine")


@pytest.fixture(autouse=True)
def _shared_gemma(monkeypatch: pytest.MonkeyPatch, gemma) -> None:
    """The CLI gets the session's Gemma instead of loading its own copy."""
    monkeypatch.setitem(cli._SLM_CACHE, ("gemma-3-270m", None), gemma)


def _invoke(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "creature_or_machine.csv"
    rows = [(f"Report: {s}.", "creature") for s in ANIMALS] + [(f"Report: {s}.", "machine") for s in VEHICLES]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["input", "label"])
        writer.writerows(rows)
    return path


def test_default_pipeline_runs_on_a_task_written_by_the_test(task_file: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "chroma"
    _invoke("build", task_file, "-d", store_dir, "-n", "synthetic", "--pool", "16", "--test", "8", "--quiet")
    demos = RationaleStore.local("synthetic", store_dir).list()
    assert len(demos) == 8
    counts = {lab: sum(d.label == lab for d in demos) for lab in LABELS}
    assert counts == {"creature": 4, "machine": 4}, counts  # label-balanced by default
    for demo in demos:
        words = set(re.findall(r"\w+", demo.input.lower()))
        assert demo.keywords and {w.lower() for w in demo.keywords} <= words, (demo.keywords, demo.input)
        # The stem in every input of the pool carries no signal: document frequency removes it.
        assert "report" not in {w.lower() for w in demo.keywords}
        assert demo.rationale.startswith("The key words:") and demo.label in demo.rationale

    picked = json.loads(
        _invoke("select", store_dir, "-n", "synthetic", "--query", "Report: a camel crossed the desert.", "--json")
    )
    assert len(picked) == 4 and {d["label"] for d in picked} == set(LABELS)

    out_dir = tmp_path / "eval"
    _invoke(
        "eval",
        task_file,
        "--test-size",
        "6",
        "--pool-size",
        "12",
        "--n-shot",
        "2",
        "--out-dir",
        out_dir,
        "--no-plot",
        "--quiet",
    )
    runs = json.loads((out_dir / "results.json").read_text())["runs"].values()
    assert {r["method"] for r in runs} == set(DEFAULT_METHODS)
    for run in runs:
        assert run["labels"] == list(LABELS) and run["n_items"] == 6
        assert {it["pred"] for it in run["items"]} <= set(LABELS)
        assert all(d["answer"] in LABELS for d in run["demo"].get("demos", []))
