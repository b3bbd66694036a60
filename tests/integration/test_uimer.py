"""UIMER on the real MiniLM proxy: a proxy trained to agree with gold rationales relies on the right words.

The synthetic task (the issue's test): the label is decided by one keyword (nonsense words, so the
pretrained encoder has no prior about them), but in the small training set a distractor word
("tuesday" / "monday") always goes with the label as well. Twelve of the 24 training examples mark
the keyword as the gold rationale. On a test set where the distractor is random, the UIMER-trained
proxy must name the keyword as its top Grad x Input word more often than the plainly fine-tuned
proxy, and answer more accurately. Fixed seeds throughout.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from amplify_agents.explainers.gradient import GradXInputExplainer
from amplify_agents.explainers.registry import create_proxy
from amplify_agents.models.proxy import ProxyClassifier
from amplify_agents.models.uimer import UimerSettings, UimerTrainer, rationales_from_store
from amplify_agents.tasks import Example, Task

pytestmark = pytest.mark.slow

KEYWORDS = {"A": "blick dax wug kiki mipa sorn".split(), "B": "fep toma zup lorp vasa grint".split()}
FILLER = "the a report says people came back from town after lunch with friends near river house today".split()
LABELS = ("A", "B")


def synthetic(n: int, seed: int, *, correlated: bool, marked: int = 0) -> list[Example]:
    """``n`` examples: label by keyword; the distractor follows the label when ``correlated``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = LABELS[i % 2]
        keyword = rng.choice(KEYWORDS[label])
        distractor = ("tuesday" if label == "A" else "monday") if correlated else rng.choice(["tuesday", "monday"])
        words = rng.sample(FILLER, 5)
        words.insert(rng.randrange(6), keyword)
        out.append(
            Example(
                id=f"{seed}-{i}",
                input=f"{distractor} {distractor}: " + " ".join(words),
                label=label,
                gold_rationale=(keyword,) if i < marked else None,
            )
        )
    return out


def _fresh_proxy(train: list[Example]) -> ProxyClassifier:
    return ProxyClassifier.from_task(Task(name="syn", labels=LABELS, examples=tuple(train)), lr=1e-4, progress=False)


def _accuracy_and_keyword_first(proxy: ProxyClassifier, test: list[Example]) -> tuple[float, float]:
    texts = [e.input for e in test]
    probs = proxy.predict_proba(texts)
    accuracy = sum(max(p, key=p.__getitem__) == e.label for p, e in zip(probs, test)) / len(test)
    explanations = GradXInputExplainer(proxy, k=1).explain(texts, [e.label for e in test])
    keywords = {w for words in KEYWORDS.values() for w in words}
    first = sum(bool(x.top_words) and x.top_words[0].lower() in keywords for x in explanations) / len(test)
    return accuracy, first


def test_uimer_gb_proxy_relies_on_the_keyword_not_the_distractor() -> None:
    train = synthetic(24, seed=1, correlated=True, marked=12)
    test = synthetic(60, seed=2, correlated=False)

    plain = _fresh_proxy(train)
    plain.fit(train, 15)
    uimer = _fresh_proxy(train)
    report = UimerTrainer(UimerSettings(method="gb")).fit(uimer, train, 15)

    plain_acc, plain_first = _accuracy_and_keyword_first(plain, test)
    uimer_acc, uimer_first = _accuracy_and_keyword_first(uimer, test)
    print(f"plain: accuracy {plain_acc:.2f}, keyword first {plain_first:.2f}")
    print(f"uimer-gb: accuracy {uimer_acc:.2f}, keyword first {uimer_first:.2f}")
    assert report.with_rationale == 12 and not report.problems
    assert uimer_first > plain_first + 0.3
    assert uimer_acc > plain_acc + 0.1


@pytest.mark.parametrize("method", ["im", "dm"])
def test_erasure_and_extractor_losses_train_after_the_warm_up(method: str) -> None:
    train = synthetic(16, seed=3, correlated=True, marked=8)
    proxy = _fresh_proxy(train)
    before = proxy.predict_proba([e.input for e in train])
    report = UimerTrainer(UimerSettings(method=method, warmup_epochs=1)).fit(proxy, train, 3)

    assert report.method == f"uimer-{method}" and report.with_rationale == 8
    assert "interpretation_loss" not in report.epochs[0]  # the warm-up: task loss alone
    for epoch in report.epochs[1:]:
        assert math.isfinite(epoch["interpretation_loss"]) and epoch["interpretation_loss"] >= 0
        assert epoch["loss"] >= epoch["task_loss"]
    assert proxy.predict_proba([e.input for e in train]) != before
    assert proxy.settings["training"] == f"uimer-{method}"


def test_unusable_rationales_are_reported_per_example_and_trained_without(tmp_path: Path) -> None:
    train = synthetic(8, seed=4, correlated=True, marked=4)
    bad = {
        "4-4": ("walrus",),  # not in the input
        "4-5": (),  # empty
        "4-6": ((0, 999),),  # out of range
        "4-7": ((0, len(train[7].input)),),  # the whole input: nothing to contrast
    }
    proxy = _fresh_proxy(train)
    report = UimerTrainer(UimerSettings(method="gb", warmup_epochs=0)).fit(proxy, train, 1, rationales=bad)

    assert report.with_rationale == 4  # the four good ones of the examples themselves
    assert set(report.problems) == set(bad)
    assert "'walrus' is not in the input" in report.problems["4-4"]
    assert "empty" in report.problems["4-5"]
    assert "out of range" in report.problems["4-6"]
    assert "whole input" in report.problems["4-7"]

    folder = proxy.save(tmp_path / "proxy")
    saved = json.loads((folder / "amplify_proxy.json").read_text())
    assert saved["training"]["method"] == "uimer-gb" and saved["training"]["problems"] == report.problems
    reloaded = ProxyClassifier.load(folder, progress=False)
    assert reloaded.training == proxy.training
    assert reloaded.predict_proba([train[0].input])[0] == pytest.approx(proxy.predict_proba([train[0].input])[0])


def test_too_few_epochs_for_the_warm_up_is_refused() -> None:
    train = synthetic(4, seed=5, correlated=True, marked=2)
    with pytest.raises(ValueError, match="more epochs than warm-up epochs"):
        UimerTrainer(UimerSettings(warmup_epochs=2)).fit(_fresh_proxy(train), train, 2)


def test_gold_rationales_from_a_store_train_a_proxy_through_create_proxy() -> None:
    from amplify_agents.demonstrations import Demonstration
    from amplify_agents.stores import RationaleStore

    train = synthetic(12, seed=6, correlated=True)  # no marks of their own
    store = RationaleStore.in_memory()
    try:
        keyword = {e.id: next(w for w in e.input.split() if w in KEYWORDS[e.label]) for e in train[:6]}
        store.add(
            Demonstration(
                input=e.input, label=e.label, rationale="", task="syn", keywords=[keyword[e.id]], example_id=e.id
            )
            for e in train[:6]
        )
        store.add([Demonstration(input="no keywords", label="A", rationale="", task="syn", example_id="x")])
        gold = rationales_from_store(store)
        assert gold == {i: (w,) for i, w in keyword.items()}
    finally:
        store.close()
    proxy = create_proxy(
        "classifier", labels=LABELS, pool=train, epochs=3, training=UimerSettings(warmup_epochs=1), rationales=gold
    )
    assert proxy.training["with_rationale"] == 6 and proxy.training["method"] == "uimer-gb"


@pytest.fixture
def synthetic_task_file(tmp_path: Path) -> Path:
    rows = [
        {
            "id": e.id,
            "input": e.input,
            "label": e.label,
            **({"rationale": list(e.gold_rationale)} if e.gold_rationale else {}),
        }
        for e in synthetic(40, seed=7, correlated=True, marked=30)
    ]
    for row in rows[:10]:
        row["rationale"] = ["walrus"]  # not in the input: reported, trained without
    path = tmp_path / "syn.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def test_cli_build_trains_a_uimer_proxy_beside_the_store(synthetic_task_file: Path, tmp_path: Path, monkeypatch, gemma):
    from typer.testing import CliRunner

    from amplify_agents import cli
    from amplify_agents.cli import app

    monkeypatch.setitem(cli._SLM_CACHE, ("gemma-3-270m", None), gemma)
    store_dir = tmp_path / "chroma"
    args = [
        str(synthetic_task_file),
        "-d",
        str(store_dir),
        "-n",
        "syn",
        "--predictor",
        "proxy",
        "--explainer",
        "grad_x_input",
        "--proxy-epochs",
        "3",
        "--uimer-warmup",
        "1",
        "--n",
        "2",
        "--k",
        "2",
        "--pool",
        "24",
        "--test",
        "8",
        "-q",
    ]
    result = CliRunner().invoke(app, ["build", *args, "--proxy-training", "uimer-gb"])
    assert result.exit_code == 0, result.output
    assert "uimer-gb:" in result.output and "rationale word 'walrus' is not in the input" in result.output
    saved = [json.loads(p.read_text()) for p in (store_dir / ".amplify" / "proxies").glob("*/amplify_proxy.json")]
    assert [s["training"]["method"] for s in saved] == ["uimer-gb"]
    assert saved[0]["training"]["with_rationale"] > 0

    plain_build = [*args[:5], "--explainer", "random", "--pool", "24", "--test", "8", "-q"]
    refused = CliRunner().invoke(app, ["build", *plain_build, "--proxy-training", "uimer-im"])
    assert refused.exit_code == 2, refused.output
    assert "--proxy-training uimer-im trains the classifier proxy" in " ".join(refused.output.split())
