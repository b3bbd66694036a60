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

import hashlib
import json
import os
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

from amplify_agents.files import atomic_write
from amplify_agents.framing import Frame
from amplify_agents.models.loading import LoadedModel
from amplify_agents.prompts import PromptStyle
from amplify_agents.tasks import Example

if TYPE_CHECKING:
    from amplify_agents.answering import Answerer

__all__ = [
    "STRATEGIES",
    "Strategy",
    "LabelPredictor",
    "ProxyMCSPredictor",
    "SLMPredictor",
    "TargetPredictor",
    "balance_key",
    "Prediction",
    "Selection",
    "predict",
    "round_robin",
    "select",
]

T = TypeVar("T")

Strategy = Literal["error", "success", "h-mcs", "l-mcs", "f-exp", "random"]
STRATEGIES: tuple[str, ...] = ("error", "success", "h-mcs", "l-mcs", "f-exp", "random")


@runtime_checkable
class LabelPredictor(Protocol):
    """Anything that gives label probabilities for texts (the target model, a proxy classifier).

    A predictor with a ``predict_options(texts, options)`` method scores each text's own
    options (see :class:`TargetPredictor`); one without is asked over its label space and its
    probabilities are restricted to each example's options by :func:`predict`.
    """

    labels: tuple[str, ...]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


class TargetPredictor:
    """The target model's zero-shot answers, through the one answering path.

    Each example is asked over **its own options** (a task whose items carry their own answer
    strings is never scored over the whole task's label space). A backend that gives label
    scores yields a distribution; a generation-only backend (a chat model without
    log-probabilities, any LangChain model) yields the parsed answer with probability 1, or
    no prediction when the reply cannot be parsed.

    Args:
        answerer: the :class:`~amplify_agents.answering.Answerer` of the target.
        labels: the task's label space (used when an example has no options of its own).
    """

    def __init__(self, answerer: Answerer, labels: Sequence[str]) -> None:
        self.answerer = answerer
        self.labels = tuple(labels)

    @property
    def model_id(self) -> str:
        return self.answerer.backend.model_name

    @property
    def cache_identity(self) -> dict[str, object]:
        """What decides these predictions (model, backend, prompt layout): the key of cached predictions."""
        st = self.answerer.settings.style
        return {
            **self.answerer.identity,
            "frame": asdict(st.frame),
            "answer_prefix": st.answer_prefix,
            "system_message": st.system_message,
            "placement": self.answerer.settings.placement,
            "calibration": self.answerer.settings.calibration,
        }

    def predict_options(self, texts: Sequence[str], options: Sequence[Sequence[str]]) -> list[dict[str, float]]:
        """Probabilities over each text's own options ({} for an unparseable generated answer)."""
        answers = self.answerer.answer(list(texts), [tuple(o) for o in options])
        return [a.probs if a.scores is not None else ({a.predicted: 1.0} if a.predicted else {}) for a in answers]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return self.predict_options(texts, [self.labels] * len(texts))


class SLMPredictor(TargetPredictor):
    """A local causal LM's zero-shot label probabilities (a :class:`TargetPredictor` over a
    :class:`~amplify_agents.answering.LocalBackend`)."""

    def __init__(self, loaded: LoadedModel, labels: Sequence[str], frame: Frame = Frame(), *, batch_size: int = 16):
        from amplify_agents.answering import Answerer, AnswerSettings, LocalBackend

        self.loaded = loaded
        self.frame = frame
        super().__init__(
            Answerer(LocalBackend(loaded, batch_size=batch_size), AnswerSettings(PromptStyle(frame))), labels
        )


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
    predictor: LabelPredictor,
    examples: Sequence[Example],
    *,
    batch_size: int = 32,
    progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[Prediction]:
    """Predict every example over its own options (``example.choices``, else the predictor's labels).

    A predictor that scores options itself (``predict_options``) is asked for them; any other
    is asked over its label space and its probabilities are restricted to the example's
    options and renormalised. No answer (an unparseable generated reply) becomes ``None``.

    With ``cache_dir``, the predictions of a predictor that names what decides them
    (``cache_identity``: model, backend, prompt layout) are kept there, keyed by that and the
    examples (ids, inputs, options): predicting the same pool again reads the file.
    """
    whole = getattr(predictor, "predict_examples", None)
    if whole is not None:
        return list(whole(examples, cache_dir=cache_dir))
    identity = getattr(predictor, "cache_identity", None)
    path = None
    if cache_dir is not None and identity is not None:
        rows = [[ex.id, ex.input, list(ex.choices or predictor.labels)] for ex in examples]
        blob = json.dumps({"predictor": identity, "examples": rows}, sort_keys=True, default=str)
        path = Path(cache_dir) / f"{hashlib.sha256(blob.encode()).hexdigest()[:32]}.json"
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            return [Prediction(ex, r["predicted"], r["probs"]) for ex, r in zip(examples, stored, strict=True)]
    out = _predict(predictor, examples, batch_size, progress)
    if path is not None:
        data = [{"predicted": p.predicted, "probs": p.probs} for p in out]
        atomic_write(path, lambda fh: json.dump(data, fh))
    return out


def _predict(
    predictor: LabelPredictor, examples: Sequence[Example], batch_size: int, progress: bool
) -> list[Prediction]:
    out: list[Prediction] = []
    batches = range(0, len(examples), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", unit="batch")
    scores_options = getattr(predictor, "predict_options", None)
    for start in batches:
        chunk = examples[start : start + batch_size]
        options = [tuple(ex.choices or predictor.labels) for ex in chunk]
        texts = [e.input for e in chunk]
        if scores_options is not None:
            got = scores_options(texts, options)
        else:
            got = [_restrict(p, o) for p, o in zip(predictor.predict_proba(texts), options, strict=True)]
        for ex, probs in zip(chunk, got, strict=True):
            best = max(probs, key=probs.__getitem__) if probs else None
            out.append(Prediction(ex, best, dict(probs)))
    return out


class ProxyMCSPredictor:
    """AMPLIFY's selection signal: the **target's** answer decides whether an example is an error,
    the **proxy's** probabilities give its Misclassification Confidence Score (MCS).

    Args:
        target: the target model's predictor (e.g. a :class:`TargetPredictor` of a hosted model).
        proxy: the proxy classifier (fine-tuned on data that is *not* the pool it ranks).
    """

    def __init__(self, target: LabelPredictor, proxy: LabelPredictor) -> None:
        self.target = target
        self.proxy = proxy
        self.labels = tuple(target.labels)
        self.model_id = getattr(target, "model_id", "")

    def predict_examples(
        self, examples: Sequence[Example], *, cache_dir: str | os.PathLike[str] | None = None
    ) -> list[Prediction]:
        """The target's prediction (cached in ``cache_dir`` when given) with the proxy's probabilities."""
        by_target, by_proxy = predict(self.target, examples, cache_dir=cache_dir), predict(self.proxy, examples)
        return [Prediction(t.example, t.predicted, p.probs) for t, p in zip(by_target, by_proxy, strict=True)]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """The proxy's probabilities (what faithfulness is measured on)."""
        return self.proxy.predict_proba(texts)


def _restrict(probs: dict[str, float], options: Sequence[str]) -> dict[str, float]:
    """``probs`` over ``options`` only, renormalised ({} when none of them has mass)."""
    kept = {o: probs.get(o, 0.0) for o in options}
    total = sum(kept.values())
    return {o: p / total for o, p in kept.items()} if total > 0 else {}


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
