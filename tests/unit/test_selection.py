"""Selection strategies and label balance, on constructed predictions."""

from __future__ import annotations

from collections import Counter

import pytest

from amplify_agents.predictors import Prediction
from amplify_agents.strategies import STRATEGIES, select_by_strategy
from amplify_agents.tasks import Example


def _pred(i: int, gold: str, p_yes: float, predicted: str | None = "auto") -> Prediction:
    probs = {"yes": p_yes, "no": 1 - p_yes}
    pred = max(probs, key=probs.__getitem__) if predicted == "auto" else predicted
    return Prediction(Example(str(i), f"input {i}", gold), pred, probs)


@pytest.fixture
def preds() -> list[Prediction]:
    # A model that says "yes" nearly always: errors are almost all gold "no".
    out = [_pred(i, "yes", 0.6 + i / 100) for i in range(10)]  # correct
    out += [_pred(10 + i, "no", 0.55 + i / 30) for i in range(10)]  # wrong, MCS rising with i
    out += [_pred(20 + i, "yes", 0.3 + i / 100) for i in range(3)]  # wrong, gold yes
    out += [_pred(30 + i, "no", 0.2) for i in range(5)]  # correct "no"
    out.append(_pred(99, "no", 0.5, predicted=None))  # answer outside the label space
    return out


def test_error_and_success_partition(preds: list[Prediction]) -> None:
    err = select_by_strategy(preds, "error", 100, balanced=False)
    ok = select_by_strategy(preds, "success", 100, balanced=False)
    assert all(not p.correct for p in err.chosen) and all(p.correct for p in ok.chosen)
    assert len(err.chosen) + len(ok.chosen) == len(preds) - 1
    assert err.discarded["prediction outside the label space"] == 1


def test_mcs_orders(preds: list[Prediction]) -> None:
    high = select_by_strategy(preds, "h-mcs", 5, balanced=False).chosen
    low = select_by_strategy(preds, "l-mcs", 5, balanced=False).chosen
    assert [p.mcs for p in high] == sorted([p.mcs for p in high], reverse=True)
    assert high[0].example.id == "19"  # p(no)=... highest p(yes) among gold-no errors
    assert min(p.mcs for p in high) > max(p.mcs for p in low)
    assert all(p.mcs > 0 for p in high + low)


def test_mcs_formula() -> None:
    p = _pred(1, "no", 0.8)
    assert p.predicted == "yes" and p.mcs == pytest.approx(0.8 - 0.2)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_label_balanced(preds: list[Prediction], strategy: str) -> None:
    faith = {p.example.id: float(i) for i, p in enumerate(preds)}
    sel = select_by_strategy(preds, strategy, 6, seed=1, faithfulness=faith)
    counts = Counter(p.example.label for p in sel.chosen)
    assert len(sel.chosen) == 6
    assert counts["yes"] == counts["no"] == 3, counts
    assert sel.label_counts == dict(counts)


def test_unbalanced_follows_the_ranking(preds: list[Prediction]) -> None:
    sel = select_by_strategy(preds, "h-mcs", 6, balanced=False)
    errors = sorted((p for p in preds if p.predicted and not p.correct), key=lambda p: -p.mcs)
    assert [p.example.id for p in sel.chosen] == [p.example.id for p in errors[:6]]
    assert Counter(p.example.label for p in sel.chosen) == {"no": 5, "yes": 1}


def test_short_selection_says_how_many(preds: list[Prediction]) -> None:
    sel = select_by_strategy(preds, "error", 50, fill_missing_labels=False)
    assert sel.short and len(sel.chosen) == sel.eligible == 13 and sel.requested == 50


def test_missing_label_is_filled_with_its_hardest_examples() -> None:
    # A model that always says "yes": every error is a gold "no".
    preds = [_pred(i, "no", 0.6 + i / 100) for i in range(6)]
    preds += [_pred(10 + i, "yes", 0.9 - i / 10) for i in range(5)]  # correct "yes", p(yes) falling
    plain = select_by_strategy(preds, "error", 4, fill_missing_labels=False)
    assert Counter(p.example.label for p in plain.chosen) == {"no": 4} and not plain.filled
    sel = select_by_strategy(preds, "error", 4)
    assert Counter(p.example.label for p in sel.chosen) == {"no": 2, "yes": 2}
    # The fill takes the "yes" items the model was least sure of (lowest gold probability).
    assert sel.filled == {"14", "13"} and sel.eligible == 6


def test_random_is_seeded(preds: list[Prediction]) -> None:
    ids = lambda s: [p.example.id for p in s.chosen]  # noqa: E731
    assert ids(select_by_strategy(preds, "random", 5, seed=3)) == ids(select_by_strategy(preds, "random", 5, seed=3))
    assert ids(select_by_strategy(preds, "random", 5, seed=3)) != ids(select_by_strategy(preds, "random", 5, seed=4))


def test_f_exp_ranks_by_faithfulness_and_needs_it(preds: list[Prediction]) -> None:
    faith = {p.example.id: -i for i, p in enumerate(preds)}
    sel = select_by_strategy(preds, "f-exp", 3, balanced=False, faithfulness=faith)
    assert [p.example.id for p in sel.chosen] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="faithfulness"):
        select_by_strategy(preds, "f-exp", 3)


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="h-mcs"):
        select_by_strategy([], "best", 3)


def test_document_frequency_filter_removes_a_word_in_every_input() -> None:
    from amplify_agents.explainers.words import document_frequency_weights, rank_words, split_words

    pool = [
        "Which statement is sarcastic? The cake was great.",
        "Which statement is sarcastic? Taxes are fun.",
        "Which statement is sarcastic? Traffic jams relax me.",
        "Rain is wet.",
    ]
    weights = document_frequency_weights(pool, min_df=0.5)
    assert weights["sarcastic"] == pytest.approx(0.25) and "rain" not in weights
    every = document_frequency_weights(pool[:3])
    assert every["sarcastic"] == 0.0
    words = split_words(pool[0])
    scores = [10.0 if w.text == "sarcastic" else 1.0 for w in words]
    plain = [words[i].text for i in rank_words(words, scores, 3)]
    filtered = [words[i].text for i in rank_words(words, scores, 3, weights=every)]
    assert plain[0] == "sarcastic" and "sarcastic" not in filtered
