"""The one interface every explainer implements, and one base class per family.

An explainer turns (input text, target label) into an :class:`Explanation`: scores over
the input's words and the top-k keywords, or (``self_exp``) a short generated explanation.
Callers use :meth:`Explainer.explain` (a batch) or :meth:`Explainer.explain_one`; the base
class checks the inputs, batches, times the call and stamps the settings. Two families
implement the work, as Captum's ``attr`` has one base class per family:

* :class:`AttributionExplainer` subclasses implement ``_attribute``: token-level scores
  for a batch; the base class maps tokens to words, aggregates, ranks and checks for
  degenerate results (gradients, Captum layer methods, perturbations, the random control);
* :class:`SelfReportedExplainer` subclasses implement ``_report``: keywords the model
  named, or a text it wrote (``self_topk``, ``self_exp``).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from amplify_agents.defaults import DEFAULTS
from amplify_agents.errors import ExplanationError
from amplify_agents.explainers.words import (
    DEFAULT_STOPWORDS,
    Aggregation,
    Word,
    aggregate,
    rank_words,
    split_words,
    tokens_to_words,
)

WordWeights = Mapping[str, float]
"""Lower-cased word → factor applied when ranking keywords (e.g. document-frequency weights)."""

__all__ = [
    "AttributionExplainer",
    "Explainer",
    "Explanation",
    "SelfReport",
    "SelfReportedExplainer",
    "TokenAttribution",
    "WordWeights",
]


@dataclass
class TokenAttribution:
    """What a subclass returns for one input: token scores over the input text.

    ``offsets`` are character spans relative to the *input text* (not to the prompt it
    was embedded in); tokens outside the input text must not appear here: they are
    not features and get no score.
    """

    tokens: list[str]
    scores: list[float]
    offsets: list[tuple[int, int]]
    predicted: str | None = None
    label_probs: dict[str, float] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SelfReport:
    """What a self-reported explainer returns for one input.

    ``keywords``: the words of the input the model named, best first, already filtered to
    the input (None for an explainer that writes a text instead); ``generated_text``: the
    text it wrote (self_exp).
    """

    keywords: list[str] | None = None
    generated_text: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Explanation:
    """A post hoc explanation of one input with respect to one target label.

    Attributes:
        text: the input text explained.
        target: the label explained (usually the gold label).
        words: the words of the text (punctuation marks are words of their own).
        word_scores: one score per word (higher = more support for ``target``).
        tokens / token_scores: the underlying token-level attribution.
        top_words: the top-k keywords, best first.
        top_words_in_text_order: the same keywords in the order they occur in the text.
        explainer / settings: which explainer ran and how.
        seconds: wall time of the call, divided evenly over a batch.
        degenerate: why the attribution cannot be trusted (NaN, all zero), else None;
            a degenerate explanation has no top words.
        generated_text: for explainers that write text (self_exp), the text.
        info: explainer-specific extras (e.g. keywords the model named that were dropped).
    """

    text: str
    target: str
    words: list[str]
    word_scores: list[float]
    tokens: list[str]
    token_scores: list[float]
    top_words: list[str]
    top_words_in_text_order: list[str]
    explainer: str
    settings: dict[str, Any]
    seconds: float
    degenerate: str | None = None
    predicted: str | None = None
    label_probs: dict[str, float] | None = None
    generated_text: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the explanation is usable as a rationale."""
        return self.degenerate is None and bool(self.top_words or self.generated_text)


class Explainer(ABC):
    """Base class of all explainers: settings, input checks, batching and timing.

    Args:
        k: number of keywords to keep.
        aggregation: how token scores become word scores ("mean", "sum" or "max").
        stopwords: words never chosen as keywords (case-insensitive).
        exclude_punctuation: never choose punctuation marks as keywords.
        rank_by: rank words by signed score (default: support for the target) or magnitude.
        batch_size: inputs explained per batch inside one :meth:`explain` call.
        word_weights: factors applied when ranking keywords (see
            :func:`~amplify_agents.explainers.words.document_frequency_weights`); a call's own
            ``word_weights`` replaces them for that call.

    Settings are fixed at construction and never changed from outside; what a single call
    needs (the corpus's word weights) is an argument of :meth:`explain`.
    """

    #: short name used in metadata and method strings, e.g. "grad_x_input"
    name: str = "explainer"

    def __init__(
        self,
        *,
        k: int = DEFAULTS.keywords,
        aggregation: Aggregation = "mean",
        stopwords: Iterable[str] = DEFAULT_STOPWORDS,
        exclude_punctuation: bool = True,
        rank_by: Literal["score", "abs"] = "score",
        batch_size: int = 8,
        word_weights: WordWeights | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        self.k = k
        self.aggregation: Aggregation = aggregation
        self.stopwords = frozenset(s.lower() for s in stopwords)
        self.exclude_punctuation = exclude_punctuation
        self.rank_by: Literal["score", "abs"] = rank_by
        self.batch_size = batch_size
        self.word_weights: dict[str, float] | None = dict(word_weights) if word_weights is not None else None

    # ----------------------------------------------------------------- settings
    @property
    def settings(self) -> dict[str, Any]:
        """The settings that change what this explainer outputs (part of a demo's id)."""
        return self.settings_for(None)

    def settings_for(self, word_weights: WordWeights | None) -> dict[str, Any]:
        """The settings of a call with ``word_weights`` (None: the constructor's)."""
        settings: dict[str, Any] = {"k": self.k, "aggregation": self.aggregation, "rank_by": self.rank_by}
        if word_weights is not None or self.word_weights is not None:
            settings["df_weighted"] = True  # keywords depend on the pool's word frequencies
        return {**settings, **self._extra_settings()}

    def _extra_settings(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ explain
    def explain(
        self, texts: Sequence[str], targets: Sequence[str], *, word_weights: WordWeights | None = None
    ) -> list[Explanation]:
        """Explain each text with respect to its target label.

        Args:
            texts: the input texts.
            targets: the label to explain for each text.
            word_weights: keyword-ranking factors for this call (e.g. the corpus's document
                frequencies); None uses the constructor's.

        Returns:
            One :class:`Explanation` per text, in order.

        Raises:
            TypeError: a single string instead of a list (use :meth:`explain_one`).
            ExplanationError: an empty text.
            LabelError: a target outside the explainer's label space.
        """
        if isinstance(texts, str) or isinstance(targets, str):
            raise TypeError("explain() takes lists of texts and targets: use explain_one(text, target) for one.")
        text_list, target_list = list(texts), list(targets)
        if len(text_list) != len(target_list):
            raise ValueError(f"Got {len(text_list)} texts but {len(target_list)} targets: pass one target per text.")
        for i, text in enumerate(text_list):
            if not text or not text.strip():
                raise ExplanationError(f"Input {i} is empty: there is nothing to explain.")
        self._check_targets(target_list)
        weights = dict(word_weights) if word_weights is not None else self.word_weights
        settings = self.settings_for(weights)
        out: list[Explanation] = []
        for start in range(0, len(text_list), self.batch_size):
            chunk_t = text_list[start : start + self.batch_size]
            chunk_y = target_list[start : start + self.batch_size]
            began = time.perf_counter()
            done = self._explain_batch(chunk_t, chunk_y, weights)
            per_item = (time.perf_counter() - began) / len(chunk_t)
            out.extend(replace(e, seconds=per_item, settings=settings) for e in done)
        return out

    def explain_one(self, text: str, target: str, *, word_weights: WordWeights | None = None) -> Explanation:
        """Explain one text with respect to ``target`` (see :meth:`explain`)."""
        return self.explain([text], [target], word_weights=word_weights)[0]

    def _check_targets(self, targets: list[str]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Subclasses with a label space raise LabelError for an unknown target."""

    @abstractmethod
    def _explain_batch(
        self, texts: list[str], targets: list[str], word_weights: dict[str, float] | None
    ) -> list[Explanation]:
        """The family's work for one checked batch (``seconds`` and ``settings`` are set by the caller)."""

    def _explanation(self, text: str, target: str, words: Sequence[Word], **fields: Any) -> Explanation:
        return Explanation(
            text=text,
            target=target,
            words=[w.text for w in words],
            explainer=self.name,
            settings={},
            seconds=0.0,
            **fields,
        )


class AttributionExplainer(Explainer):
    """Explainers that score the input's tokens: the words with the top-k scores are the keywords.

    Subclasses implement :meth:`_attribute`.
    """

    @abstractmethod
    def _attribute(self, texts: list[str], targets: list[str]) -> list[TokenAttribution]:
        """Token-level attributions for a batch (offsets relative to each text)."""

    def _explain_batch(
        self, texts: list[str], targets: list[str], word_weights: dict[str, float] | None
    ) -> list[Explanation]:
        raws = self._attribute(texts, targets)
        return [self._finish(t, y, raw, word_weights) for t, y, raw in zip(texts, targets, raws, strict=True)]

    def _finish(self, text: str, target: str, raw: TokenAttribution, weights: dict[str, float] | None) -> Explanation:
        words = split_words(text)
        token_words = tokens_to_words(raw.offsets, words)
        word_scores = aggregate(raw.scores, token_words, len(words), self.aggregation)
        degenerate = _degenerate_reason(raw.scores)
        idx = self._rank(words, word_scores, weights) if degenerate is None else []
        return self._explanation(
            text,
            target,
            words,
            word_scores=word_scores,
            tokens=list(raw.tokens),
            token_scores=[float(s) for s in raw.scores],
            top_words=[words[i].text for i in idx],
            top_words_in_text_order=[words[i].text for i in sorted(idx)],
            degenerate=degenerate,
            predicted=raw.predicted,
            label_probs=raw.label_probs,
            info=dict(raw.info),
        )

    def _rank(self, words: Sequence[Word], scores: Sequence[float], weights: dict[str, float] | None) -> list[int]:
        return rank_words(
            words,
            scores,
            self.k,
            stopwords=self.stopwords,
            exclude_punctuation=self.exclude_punctuation,
            rank_by=self.rank_by,
            weights=weights,
        )


class SelfReportedExplainer(Explainer):
    """Explainers whose model names its keywords or writes its explanation itself.

    Subclasses implement :meth:`_report`. Named keywords are kept in the order named (at
    most ``k``) and every input word gets a score, ``1`` for the first keyword down to
    ``1/n`` for the last and ``0`` for the others, so ``word_scores`` show the ranking; a
    written text has no word ranking (its word scores are NaN).
    """

    @abstractmethod
    def _report(self, texts: list[str], targets: list[str]) -> list[SelfReport]:
        """What the model named or wrote for each input of a batch."""

    def _explain_batch(
        self, texts: list[str], targets: list[str], word_weights: dict[str, float] | None
    ) -> list[Explanation]:
        return [self._finish(t, y, r) for t, y, r in zip(texts, targets, self._report(texts, targets), strict=True)]

    def _finish(self, text: str, target: str, report: SelfReport) -> Explanation:
        words = split_words(text)
        if report.keywords is None:  # a written explanation: no word ranking
            tokens: list[str] = []
            scores: list[float] = []
            word_scores = [float("nan")] * len(words)
            top: list[str] = []
        else:
            top = list(report.keywords)[: self.k]
            rank = {w.lower(): i for i, w in enumerate(top)}
            tokens = [w.text for w in words]
            scores = [0.0 if (i := rank.get(w.text.lower())) is None else (len(top) - i) / len(top) for w in words]
            word_scores = list(scores)
        first_seen = {w.text.lower(): w.start for w in reversed(words)}
        return self._explanation(
            text,
            target,
            words,
            word_scores=word_scores,
            tokens=tokens,
            token_scores=scores,
            top_words=top,
            top_words_in_text_order=sorted(top, key=lambda w: first_seen.get(w.lower(), len(text))),
            generated_text=report.generated_text,
            info=dict(report.info),
        )


def _degenerate_reason(scores: Sequence[float]) -> str | None:
    if not scores:
        return "no input token received a score"
    if any(not math.isfinite(s) for s in scores):
        return "attribution contains NaN or infinite values"
    if all(s == 0.0 for s in scores):
        return "attribution is zero for every input token"
    return None
