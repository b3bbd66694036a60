"""The one answering path on real parts: per-item options, and AMPLIFY's proxy split.

The task is written by the test: every item carries its own three answer strings (as ARC
and CommonsenseQA items do), and the answers differ from item to item (18 distinct strings
over 6 items), so the task's label space is no item's option list.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplify_agents import cli
from amplify_agents.answering import Answerer, AnswerSettings, LocalBackend
from amplify_agents.cli import app
from amplify_agents.framing import Frame
from amplify_agents.predictors import TargetPredictor, predict_pool
from amplify_agents.prompts import PromptStyle
from amplify_agents.stores import RationaleStore
from amplify_agents.strategies import balance_key, select_by_strategy
from amplify_agents.tasks import load_task

pytestmark = pytest.mark.slow

ITEMS = [
    ("What do bees make?", ["honey", "steel", "glass"], "honey"),
    ("What falls from clouds?", ["bricks", "rain", "coins"], "rain"),
    ("What do you drink when thirsty?", ["sand", "paper", "water"], "water"),
    ("What shines in the day sky?", ["sun", "lamp", "candle"], "sun"),
    ("What do cows eat?", ["rocks", "grass", "plastic"], "grass"),
    ("What do you wear on feet?", ["hats", "gloves", "shoes"], "shoes"),
]


@pytest.fixture()
def options_task(tmp_path: Path) -> Path:
    path = tmp_path / "own_options.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, (q, choices, gold) in enumerate(ITEMS):
            fh.write(json.dumps({"id": f"q{i}", "input": q, "label": gold, "choices": choices}) + "\n")
    return path


def test_each_item_is_scored_over_its_own_options(gemma, options_task: Path) -> None:
    task = load_task(options_task)
    # The task's label space (the golds seen) is not any item's options: scoring it would ask
    # 6 labels per item, 4 of them answers to other questions.
    assert len(task.labels) == 6
    calls: list[list[tuple[str, ...]]] = []
    backend = LocalBackend(gemma)
    inner = backend.answer

    def spy(prompts, label_lists, *args):  # type: ignore[no-untyped-def]
        calls.append([tuple(x) for x in label_lists])
        return inner(prompts, label_lists, *args)

    backend.answer = spy  # type: ignore[method-assign]
    predictor = TargetPredictor(Answerer(backend, AnswerSettings(PromptStyle(Frame.from_task(task)))), task.labels)
    predictions = predict_pool(predictor, list(task))
    assert [lab for call in calls for lab in call] == [tuple(c) for _, c, _ in ITEMS]  # 3 labels per item, not 18
    for p, (_, choices, _) in zip(predictions, ITEMS, strict=True):
        assert set(p.probs) == set(choices) and abs(sum(p.probs.values()) - 1) < 1e-6
        assert p.predicted in choices  # never None: the prediction is one of the item's options

    # Label balance means option position here: the gold sits at positions 1, 2, 3, 1, 2, 3.
    assert [balance_key(ex) for ex in task] == ["option 1", "option 2", "option 3"] * 2
    chosen = select_by_strategy(predictions, "random", 3, seed=0).chosen
    assert sorted(balance_key(p.example) for p in chosen) == ["option 1", "option 2", "option 3"]


ANIMALS = ["a cat slept", "the dog barked", "a horse galloped", "the cow mooed", "a bird sang", "the fox hid"]
VEHICLES = ["a bus stopped", "the truck hauled", "a bike leaned", "the train left", "a taxi honked", "the van parked"]


def test_amplify_build_never_selects_from_the_proxys_training_data(
    monkeypatch: pytest.MonkeyPatch, gemma, tmp_path: Path
) -> None:
    monkeypatch.setitem(cli._SLM_CACHE, ("gemma-3-270m", None), gemma)
    path = tmp_path / "kinds.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["input", "label"])
        writer.writerows(
            [(f"Note: {s}.", "creature") for s in ANIMALS] + [(f"Note: {s}.", "machine") for s in VEHICLES]
        )
    store_dir = tmp_path / "chroma"
    args = ["build", str(path), "-d", str(store_dir), "-n", "kinds", "--predictor", "proxy", "--proxy-epochs", "1"]
    args += ["--test", "2", "--n", "4", "--strategy", "random", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    task = load_task(path)
    pool = task.split(seed=0, test=2).pool
    proxy_train, selectable = pool.split_for_proxy(0.5, seed=0)
    train_ids = {e.id for e in proxy_train}
    demos = RationaleStore.local("kinds", store_dir).list()
    assert demos and train_ids
    assert not {d.example_id for d in demos} & train_ids  # never a proxy training example
    assert {d.example_id for d in demos} <= {e.id for e in selectable}
    assert all(d.extra["proxy_train_size"] == len(proxy_train) for d in demos)
    saved = list((store_dir / ".amplify" / "proxies").iterdir())
    assert len(saved) == 1 and (saved[0] / "amplify_proxy.json").is_file()  # the proxy is kept beside the store

    # A second build reuses the saved proxy and the cached target answers, and adds nothing.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "fine-tuning" not in again.output
    assert len(RationaleStore.local("kinds", store_dir).list()) == len(demos)

    # inspect --explain reloads that proxy and the build's word weights: it reproduces the stored keywords.
    for demo in demos[:2]:
        shown = CliRunner().invoke(app, ["inspect", str(store_dir), "-n", "kinds", "--explain", demo.demo_id])
        assert shown.exit_code == 0, shown.output
        rows = {
            cells[1].strip(): cells[2].strip()
            for line in shown.output.splitlines()
            if len(cells := line.split("│")) >= 4
        }
        assert rows["stored keywords"] == rows["keywords now"] == ", ".join(demo.keywords), rows
