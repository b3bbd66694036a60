"""The one interface every explainer implements.

An explainer turns (input text, target label) into scores over the input's words and
the top-k keywords, or (self_exp) into a short generated explanation. Subclasses
implement :meth:`Explainer._attribute`, which returns token-level scores for a batch;
the base class maps tokens to words, aggregates, ranks, times the call and checks for
degenerate results. Callers only use :meth:`Explainer.explain`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

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

__all__ = ["Explanation", "TokenAttribution", "Explainer"]


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
    generated_text: str | None = None
    keywords: list[str] | None = None
    """Keywords an explainer produced directly (self_topk), already filtered to the input."""
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
    """Base class of all explainers.

    Args:
        k: number of keywords to keep.
        aggregation: how token scores become word scores ("mean", "sum" or "max").
        stopwords: words never chosen as keywords (case-insensitive).
        exclude_punctuation: never choose punctuation marks as keywords.
        rank_by: rank words by signed score (default: support for the target) or magnitude.
        batch_size: inputs explained per batch inside one :meth:`explain` call.
    """

    #: short name used in metadata and method strings, e.g. "grad_x_input"
    name: str = "explainer"

    def __init__(
        self,
        *,
        k: int = 5,
        aggregation: Aggregation = "mean",
        stopwords: Iterable[str] = DEFAULT_STOPWORDS,
        exclude_punctuation: bool = True,
        rank_by: Literal["score", "abs"] = "score",
        batch_size: int = 8,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        self.k = k
        self.aggregation: Aggregation = aggregation
        self.stopwords = frozenset(s.lower() for s in stopwords)
        self.exclude_punctuation = exclude_punctuation
        self.rank_by: Literal["score", "abs"] = rank_by
        self.batch_size = batch_size
        #: lower-cased word → factor applied when ranking keywords; set by the builder to
        #: document-frequency weights over the pool (see ``document_frequency_weights``)
        self.word_weights: dict[str, float] | None = None

    # ----------------------------------------------------------------- settings
    @property
    def settings(self) -> dict[str, Any]:
        """The settings that change what this explainer outputs (part of a demo's id)."""
        settings = {"k": self.k, "aggregation": self.aggregation, "rank_by": self.rank_by}
        if self.word_weights is not None:
            settings["df_weighted"] = True  # keywords depend on the pool's word frequencies
        return {**settings, **self._extra_settings()}

    def _extra_settings(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ explain
    @overload
    def explain(self, texts: str, targets: str) -> Explanation: ...
    @overload
    def explain(self, texts: Sequence[str], targets: Sequence[str]) -> list[Explanation]: ...

    def explain(self, texts: str | Sequence[str], targets: str | Sequence[str]) -> Explanation | list[Explanation]:
        """Explain each text with respect to its target label.

        Args:
            texts: one input text or a list of them.
            targets: the label to explain for each text (one string for one text).

        Returns:
            One :class:`Explanation`, or a list in the order of ``texts``.

        Raises:
            ExplanationError: an empty text.
            LabelError: a target outside the explainer's label space.
        """
        single = isinstance(texts, str)
        text_list = [texts] if isinstance(texts, str) else list(texts)
        target_list = [targets] if isinstance(targets, str) else list(targets)
        if len(text_list) != len(target_list):
            raise ValueError(f"Got {len(text_list)} texts but {len(target_list)} targets: pass one target per text.")
        for i, text in enumerate(text_list):
            if not text or not text.strip():
                raise ExplanationError(f"Input {i} is empty: there is nothing to explain.")
        self._check_targets(target_list)
        out: list[Explanation] = []
        for start in range(0, len(text_list), self.batch_size):
            chunk_t = text_list[start : start + self.batch_size]
            chunk_y = target_list[start : start + self.batch_size]
            began = time.perf_counter()
            raws = self._attribute(chunk_t, chunk_y)
            per_item = (time.perf_counter() - began) / len(chunk_t)
            out.extend(self._finish(t, y, raw, per_item) for t, y, raw in zip(chunk_t, chunk_y, raws))
        return out[0] if single else out

    def _check_targets(self, targets: list[str]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Subclasses with a label space raise LabelError for an unknown target."""

    @abstractmethod
    def _attribute(self, texts: list[str], targets: list[str]) -> list[TokenAttribution]:
        """Token-level attributions for a batch (offsets relative to each text)."""

    # ------------------------------------------------------------------- finish
    def _finish(self, text: str, target: str, raw: TokenAttribution, seconds: float) -> Explanation:
        words = split_words(text)
        token_words = tokens_to_words(raw.offsets, words)
        word_scores = aggregate(raw.scores, token_words, len(words), self.aggregation)
        degenerate = _degenerate_reason(raw.scores) if raw.keywords is None and raw.generated_text is None else None
        if raw.keywords is not None:
            top = list(raw.keywords)[: self.k]
            order = {w.text.lower(): w.start for w in reversed(words)}
            in_text = sorted(top, key=lambda w: order.get(w.lower(), len(text)))
        elif degenerate is None:
            idx = self._rank(words, word_scores)
            top = [words[i].text for i in idx]
            in_text = [words[i].text for i in sorted(idx)]
        else:
            top, in_text = [], []
        return Explanation(
            text=text,
            target=target,
            words=[w.text for w in words],
            word_scores=word_scores,
            tokens=list(raw.tokens),
            token_scores=[float(s) for s in raw.scores],
            top_words=top,
            top_words_in_text_order=in_text,
            explainer=self.name,
            settings=self.settings,
            seconds=seconds,
            degenerate=degenerate,
            predicted=raw.predicted,
            label_probs=raw.label_probs,
            generated_text=raw.generated_text,
            info=dict(raw.info),
        )

    def _rank(self, words: Sequence[Word], scores: Sequence[float]) -> list[int]:
        return rank_words(
            words,
            scores,
            self.k,
            stopwords=self.stopwords,
            exclude_punctuation=self.exclude_punctuation,
            rank_by=self.rank_by,
            weights=self.word_weights,
        )


def _degenerate_reason(scores: Sequence[float]) -> str | None:
    if not scores:
        return "no input token received a score"
    if any(not math.isfinite(s) for s in scores):
        return "attribution contains NaN or infinite values"
    if all(s == 0.0 for s in scores):
        return "attribution is zero for every input token"
    return None
