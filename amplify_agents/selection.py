"""Which examples become demonstrations: the six strategies of AMPLIFY and Self-AMPLIFY.

* ``error`` / ``success``: the model's own prediction is wrong / right (Self-AMPLIFY);
* ``h-mcs`` / ``l-mcs``: among errors, the highest / lowest Misclassification
  Confidence Score, MCS = p(predicted wrong label) − p(gold label) (AMPLIFY);
* ``f-exp``: the most faithful explanations, i.e. the largest drop of p(gold) when
  the explanation's top-k words are removed;
* ``random``: seeded.

Predictions come from any :class:`LabelPredictor` (the SLM via label scoring, or a
proxy classifier). Selection is label-balanced by default: demonstrations that all
share one gold label teach the label, not the task.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel
from amplify_agents.models.scoring import LabelScorer
from amplify_agents.tasks import Example

__all__ = [
    "STRATEGIES",
    "Strategy",
    "LabelPredictor",
    "SLMPredictor",
    "Prediction",
    "Selection",
    "predict",
    "select",
]

Strategy = Literal["error", "success", "h-mcs", "l-mcs", "f-exp", "random"]
STRATEGIES: tuple[str, ...] = ("error", "success", "h-mcs", "l-mcs", "f-exp", "random")


@runtime_checkable
class LabelPredictor(Protocol):
    """Anything that gives label probabilities for texts (the SLM, a proxy classifier)."""

    labels: tuple[str, ...]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


class SLMPredictor:
    """Label probabilities from a causal LM by scoring each label after a zero-shot prompt."""

    def __init__(self, loaded: LoadedModel, labels: Sequence[str], frame: Frame = Frame(), *, batch_size: int = 16):
        self.loaded = loaded
        self.labels = tuple(labels)
        self.frame = frame
        self.scorer = LabelScorer(loaded, batch_size=batch_size, label_prefix=frame.label_prefix)

    @property
    def model_id(self) -> str:
        return self.loaded.name

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        prompts = [self.frame.render(t)[0] for t in texts]
        return [s.probs for s in self.scorer.score(prompts, self.labels)]


@dataclass(frozen=True)
class Prediction:
    """A model's prediction on one example, with the scores selection uses."""

    example: Example
    predicted: str | None
    """None when the model's answer was outside the label space."""
    probs: dict[str, float]

    @property
    def correct(self) -> bool:
        return self.predicted == self.example.label

    @property
    def gold_prob(self) -> float:
        return self.probs.get(self.example.label, 0.0)

    @property
    def mcs(self) -> float:
        """Misclassification Confidence Score: p(predicted) − p(gold); ≤ 0 when correct."""
        if self.predicted is None:
            return float("nan")
        return self.probs.get(self.predicted, 0.0) - self.gold_prob

    def scores(self) -> dict[str, float | str | None]:
        return {"prediction": self.predicted, "gold_prob": round(self.gold_prob, 6), "mcs": round(self.mcs, 6)}


def predict(
    predictor: LabelPredictor, examples: Sequence[Example], *, batch_size: int = 32, progress: bool = False
) -> list[Prediction]:
    """Predict every example; a prediction outside the label space becomes ``None``."""
    out: list[Prediction] = []
    batches = range(0, len(examples), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", unit="batch")
    for start in batches:
        chunk = examples[start : start + batch_size]
        for ex, probs in zip(chunk, predictor.predict_proba([e.input for e in chunk])):
            best = max(probs, key=probs.__getitem__) if probs else None
            allowed = set(ex.choices or predictor.labels)
            out.append(Prediction(ex, best if best in allowed else None, dict(probs)))
    return out


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


def select(
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
    chosen = _balanced(ranked, n) if balanced else ranked[:n]
    filled &= {p.example.id for p in chosen}
    counts: dict[str, int] = defaultdict(int)
    for p in chosen:
        counts[p.example.label] += 1
    return Selection(strategy, chosen, n, len(ranked) - len(filled), discarded, dict(counts), filled)


def _fill_labels(ranked: list[Prediction], pool: list[Prediction], n: int) -> tuple[list[Prediction], set[str]]:
    """Append, for each gold label short of its share of ``n``, its hardest unranked examples."""
    labels = sorted({p.example.label for p in pool})
    if len(labels) < 2:
        return ranked, set()
    share = -(-n // len(labels))  # ceil(n / labels)
    have = {lab: sum(p.example.label == lab for p in ranked) for lab in labels}
    taken = {p.example.id for p in ranked}
    extra: list[Prediction] = []
    for lab in labels:
        missing = share - have[lab]
        if missing <= 0:
            continue
        spare = sorted(
            (p for p in pool if p.example.label == lab and p.example.id not in taken), key=lambda p: p.gold_prob
        )
        extra += spare[:missing]
    return ranked + extra, {p.example.id for p in extra}


def _balanced(ranked: list[Prediction], n: int) -> list[Prediction]:
    """Round-robin over gold labels, each label in its ranked order; a short label is topped up by others."""
    by_label: dict[str, list[Prediction]] = defaultdict(list)
    for p in ranked:
        by_label[p.example.label].append(p)
    labels = sorted(by_label, key=lambda lab: ranked.index(by_label[lab][0]))  # best-ranked label first
    chosen: list[Prediction] = []
    depth = 0
    while len(chosen) < n and any(depth < len(v) for v in by_label.values()):
        for lab in labels:
            if depth < len(by_label[lab]) and len(chosen) < n:
                chosen.append(by_label[lab][depth])
        depth += 1
    return chosen
