"""The random control: k random words of the input, no model.

AMPLIFY compares its rationales with random keywords to show that what helps is the
explanation, not the mere presence of words from the input. Every word gets a score
drawn from a generator seeded by ``seed`` and the text (SHA-256, not Python's salted
``hash``), so the same text always gets the same words, across processes and runs.
The base class then ranks the scores like any other explainer: stop words and
punctuation are skipped, a repeated word counts once, and ``k`` larger than the
number of eligible words returns all of them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any

from amplify_agents.defaults import DEFAULTS
from amplify_agents.explainers.base import AttributionExplainer, TokenAttribution
from amplify_agents.explainers.words import DEFAULT_STOPWORDS, split_words

__all__ = ["RandomExplainer"]


class RandomExplainer(AttributionExplainer):
    """Random keywords ("random"): each word of the input gets a seeded random score in (0, 1].

    Args:
        k: number of keywords.
        seed: changes which words are drawn; the draw also depends on the text (not on
            the target: the control ignores the label).
        stopwords / exclude_punctuation / batch_size: see
            :class:`~amplify_agents.explainers.base.Explainer`.
    """

    name = "random"

    def __init__(
        self,
        *,
        k: int = DEFAULTS.keywords,
        seed: int = 0,
        stopwords: Iterable[str] = DEFAULT_STOPWORDS,
        exclude_punctuation: bool = True,
        batch_size: int = 64,
    ) -> None:
        super().__init__(
            k=k,
            aggregation="mean",
            stopwords=stopwords,
            exclude_punctuation=exclude_punctuation,
            batch_size=batch_size,
        )
        self.seed = seed

    def _extra_settings(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _attribute(self, texts: list[str], targets: list[str]) -> list[TokenAttribution]:
        out = []
        for text in texts:
            digest = hashlib.sha256(f"{self.seed}\x00{text}".encode()).digest()
            rng = random.Random(digest)
            words = split_words(text)
            # 1 - random() lies in (0, 1]: never zero, so the result is never "degenerate".
            out.append(
                TokenAttribution(
                    tokens=[w.text for w in words],
                    scores=[1.0 - rng.random() for _ in words],
                    offsets=[(w.start, w.end) for w in words],
                )
            )
        return out
