"""Which pool examples become demonstrations: the six strategies of AMPLIFY and Self-AMPLIFY.

* ``error`` / ``success``: the model's own prediction is wrong / right (Self-AMPLIFY);
* ``h-mcs`` / ``l-mcs``: among errors, the highest / lowest Misclassification
  Confidence Score, MCS = p(predicted wrong label) − p(gold label) (AMPLIFY);
* ``f-exp``: the most faithful explanations, i.e. the largest drop of p(gold) when
  the explanation's top-k words are removed;
* ``random``: seeded.

Selection is label-balanced by default (:func:`round_robin`, the one label balance of the
library): demonstrations that all share one gold label teach the label, not the task.
The predictions come from :mod:`amplify_agents.predictors`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from amplify_agents.predictors import Prediction
from amplify_agents.tasks import Example

__all__ = [
    "STRATEGIES",
    "Selection",
    "Strategy",
    "balance_key",
    "round_robin",
    "select_by_strategy",
]

T = TypeVar("T")

Strategy = Literal["error", "success", "h-mcs", "l-mcs", "f-exp", "random"]
STRATEGIES: tuple[str, ...] = ("error", "success", "h-mcs", "l-mcs", "f-exp", "random")


def balance_key(example: Example) -> str:
    """What label balance balances: the gold label, or, for an example with its own options
    (answer strings that differ from item to item), the gold's position among them
    ("option 1", "option 2", ...), so demonstrations do not all teach "the answer is the first option"."""
    if example.choices:
        return f"option {example.choices.index(example.label) + 1}"
    return example.label


@dataclass
class Selection:
    """The outcome of a selection: chosen predictions, and what was discarded and why."""

    strategy: str
    chosen: list[Prediction]
    requested: int
    eligible: int
    discarded: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    filled: set[str] = field(default_factory=set)
    """Ids of examples added to balance labels the strategy found too few of."""

    @property
    def short(self) -> bool:
        """True when fewer examples were eligible than requested."""
        return len(self.chosen) < self.requested


def select_by_strategy(
    predictions: Sequence[Prediction],
    strategy: Strategy | str,
    n: int,
    *,
    seed: int = 0,
    balanced: bool = True,
    fill_missing_labels: bool = True,
    faithfulness: Callable[[Prediction], float] | dict[str, float] | None = None,
) -> Selection:
    """Choose ``n`` examples by ``strategy``.

    Args:
        predictions: the model's predictions on the candidate pool.
        strategy: one of :data:`STRATEGIES`.
        n: how many to choose; fewer are returned (and :attr:`Selection.short` is set)
            when fewer are eligible.
        seed: orders ties and the random strategies reproducibly.
        balanced: take examples from each gold label in turn (on by default).
        fill_missing_labels: with ``balanced``, when the strategy finds fewer than its
            share of some gold label (a model that always answers "yes" makes errors only
            on "no" items), top that label up with its hardest remaining examples (lowest
            gold probability first); their ids are in :attr:`Selection.filled`.
        faithfulness: for ``f-exp``: a score per example id (or a function of the
            prediction), higher = more faithful explanation.
    """
    strategy = strategy.lower()
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown selection strategy {strategy!r}: use one of {', '.join(STRATEGIES)}.")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    rng = random.Random(seed)
    discarded: dict[str, int] = {}
    valid = [p for p in predictions if p.predicted is not None]
    if len(valid) < len(predictions):
        discarded["prediction outside the label space"] = len(predictions) - len(valid)

    pool = list(valid)
    rng.shuffle(pool)  # random order first: every later sort is stable, so ties stay seeded
    if strategy == "error":
        ranked = [p for p in pool if not p.correct]
    elif strategy == "success":
        ranked = [p for p in pool if p.correct]
    elif strategy in ("h-mcs", "l-mcs"):
        ranked = sorted((p for p in pool if not p.correct), key=lambda p: p.mcs, reverse=strategy == "h-mcs")
    elif strategy == "f-exp":
        if faithfulness is None:
            raise ValueError("Strategy 'f-exp' needs faithfulness scores: pass faithfulness=.")
        score = faithfulness if callable(faithfulness) else (lambda p: faithfulness.get(p.example.id, float("nan")))
        scored = [(score(p), p) for p in pool]
        kept = [(s, p) for s, p in scored if s == s]  # drop NaN: no usable explanation
        if len(kept) < len(scored):
            discarded["no faithfulness score"] = len(scored) - len(kept)
        ranked = [p for _, p in sorted(kept, key=lambda sp: sp[0], reverse=True)]
    else:
        ranked = pool
    not_eligible = len(pool) - len(ranked) - discarded.get("no faithfulness score", 0)
    if not_eligible:
        discarded[f"not eligible for {strategy}"] = not_eligible

    filled: set[str] = set()
    if balanced and fill_missing_labels:
        ranked, filled = _fill_labels(ranked, pool, n)
    chosen = round_robin(ranked, n, key=lambda p: balance_key(p.example)) if balanced else ranked[:n]
    filled &= {p.example.id for p in chosen}
    counts: dict[str, int] = defaultdict(int)
    for p in chosen:
        counts[balance_key(p.example)] += 1
    return Selection(strategy, chosen, n, len(ranked) - len(filled), discarded, dict(counts), filled)


def _fill_labels(ranked: list[Prediction], pool: list[Prediction], n: int) -> tuple[list[Prediction], set[str]]:
    """Append, for each gold label short of its share of ``n``, its hardest unranked examples."""
    labels = sorted({balance_key(p.example) for p in pool})
    if len(labels) < 2:
        return ranked, set()
    share = -(-n // len(labels))  # ceil(n / labels)
    have = {lab: sum(balance_key(p.example) == lab for p in ranked) for lab in labels}
    taken = {p.example.id for p in ranked}
    extra: list[Prediction] = []
    for lab in labels:
        missing = share - have[lab]
        if missing <= 0:
            continue
        spare = sorted(
            (p for p in pool if balance_key(p.example) == lab and p.example.id not in taken), key=lambda p: p.gold_prob
        )
        extra += spare[:missing]
    return ranked + extra, {p.example.id for p in extra}


def round_robin(ranked: Sequence[T], n: int, key: Callable[[T], str]) -> list[T]:
    """Up to ``n`` items taken one label (``key``) at a time, each label in its ranked order.

    Labels take turns in the order of their best-ranked item; a label that runs out is
    topped up by the others. The one label balance of the library: strategies, the
    example selector and ``improve``'s fixed demonstrations all use it.
    """
    by_label: dict[str, list[T]] = defaultdict(list)
    for item in ranked:
        by_label[key(item)].append(item)  # dicts keep insertion order: best-ranked label first
    chosen: list[T] = []
    depth = 0
    while len(chosen) < n and any(depth < len(v) for v in by_label.values()):
        for members in by_label.values():
            if depth < len(members) and len(chosen) < n:
                chosen.append(members[depth])
        depth += 1
    return chosen
