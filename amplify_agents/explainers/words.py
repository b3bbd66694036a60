"""From token scores to word scores, and from word scores to top-k keywords.

Words are runs of letters/digits (with inner apostrophes or hyphens, so "don't" and
"well-known" stay whole); every other non-space character is a punctuation word of its
own. Tokens are mapped to words by character offsets, which works for any fast
tokenizer (WordPiece, SentencePiece, byte-level BPE) and for punctuation glued to a
word inside one token.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Word",
    "split_words",
    "tokens_to_words",
    "aggregate",
    "rank_words",
    "DEFAULT_STOPWORDS",
    "is_punctuation",
    "document_frequency_weights",
]

# Combining marks (U+0300-U+036F) are not \w: keep them inside words so decomposed
# (NFD) text such as "nai\u0308ve" stays one word.
_W = r"[\w\u0300-\u036f]"
_WORD_RE = re.compile(rf"{_W}+(?:['’\-]{_W}+)*|[^\w\s\u0300-\u036f]", re.UNICODE)

# A short, task-neutral English stop-word list; callers may pass their own.
DEFAULT_STOPWORDS: frozenset[str] = frozenset(
    """a an the and or but if then than so of to in on at by for with from into onto over under
    about as is are was were be been being am do does did doing have has had having i me my we
    our you your he him his she her it its they them their this that these those there here what
    which who whom whose when where why how not no nor only own same too very can will just
    should would could may might must shall s t d ll m o re ve y
    it's that's there's here's what's let's he's she's i'm you're we're they're i've you've
    we've they've i'll you'll he'll she'll we'll they'll i'd you'd he'd she'd we'd they'd
    isn't aren't wasn't weren't don't doesn't didn't can't won't wouldn't shouldn't couldn't
    hasn't haven't hadn't""".split()
)

Aggregation = Literal["mean", "sum", "max"]


@dataclass(frozen=True)
class Word:
    """A word of the input text and where it is."""

    text: str
    start: int
    end: int

    @property
    def is_punctuation(self) -> bool:
        return is_punctuation(self.text)


def is_punctuation(text: str) -> bool:
    """True when ``text`` has no letter or digit."""
    return not any(ch.isalnum() for ch in text)


def split_words(text: str) -> list[Word]:
    """Split ``text`` into words and punctuation marks with their character spans."""
    return [Word(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


def tokens_to_words(token_offsets: Sequence[tuple[int, int] | None], words: Sequence[Word]) -> list[list[int]]:
    """For each token, the indices of the words its character span overlaps.

    ``token_offsets`` are spans in the same coordinates as the words (i.e. relative
    to the input text); ``None`` marks a token outside the text (special, template).
    """
    starts = [w.start for w in words]
    result: list[list[int]] = []
    for span in token_offsets:
        if span is None or span[1] <= span[0]:
            result.append([])
            continue
        lo, hi = span
        hits = []
        # Words are sorted and disjoint: scan from the last word starting before hi.
        i = bisect_left(starts, hi) - 1
        while i >= 0 and words[i].end > lo:
            if words[i].start < hi:
                hits.append(i)
            i -= 1
        result.append(sorted(hits))
    return result


def aggregate(
    token_scores: Sequence[float],
    token_words: Sequence[Sequence[int]],
    n_words: int,
    how: Aggregation = "mean",
) -> list[float]:
    """Word scores from token scores: mean (default), sum or max over a word's tokens.

    A word no token covers (truncation cut it off) gets NaN, so it is never ranked as a
    keyword.
    """
    buckets: list[list[float]] = [[] for _ in range(n_words)]
    for score, word_ids in zip(token_scores, token_words):
        for w in word_ids:
            buckets[w].append(float(score))
    out = []
    for values in buckets:
        if not values:
            out.append(float("nan"))
        elif how == "mean":
            out.append(sum(values) / len(values))
        elif how == "sum":
            out.append(sum(values))
        elif how == "max":
            out.append(max(values, key=abs))
        else:
            raise ValueError(f"Unknown aggregation {how!r}: use 'mean', 'sum' or 'max'.")
    return out


def rank_words(
    words: Sequence[Word],
    scores: Sequence[float],
    k: int,
    *,
    stopwords: Iterable[str] = DEFAULT_STOPWORDS,
    exclude_punctuation: bool = True,
    rank_by: Literal["score", "abs"] = "score",
    weights: dict[str, float] | None = None,
) -> list[int]:
    """Indices of the top-``k`` words, best first, one per distinct word (case-insensitive).

    Punctuation and stop words are skipped; a repeated word counts once, at its best
    occurrence. ``weights`` (lower-cased word → factor) down-weights words such as
    those that occur in most inputs of a pool. Ties go to the larger magnitude, then
    to the earlier word.
    """
    # Curly apostrophes compare as straight ones ("it’s" is the stop word "it's").
    stop = {s.lower().replace("’", "'") for s in stopwords}
    best: dict[str, int] = {}
    keyed: dict[int, tuple[float, float]] = {}
    for i, (word, score) in enumerate(zip(words, scores)):
        key = word.text.lower().replace("’", "'")
        if not math.isfinite(score):
            continue
        if exclude_punctuation and word.is_punctuation:
            continue
        if key in stop:
            continue
        factor = weights.get(key, 1.0) if weights else 1.0
        if factor <= 0.0:
            continue  # e.g. a word present in every input of the pool
        value = (abs(score) if rank_by == "abs" else score) * factor
        rank_key = (value, abs(score) * factor)
        if key not in best or rank_key > keyed[best[key]]:
            best[key] = i
            keyed[i] = rank_key
    chosen = sorted(best.values(), key=lambda i: (-keyed[i][0], -keyed[i][1], i))
    return chosen[:k]


def document_frequency_weights(texts: Iterable[str], *, min_df: float = 0.5) -> dict[str, float]:
    """Down-weights for words that occur in most inputs of a pool.

    A word in a fraction ``df`` of the texts carries little signal about any one of them
    when ``df`` is high (the words of a repeated question stem, say). Words with
    ``df >= min_df`` get weight ``1 - df`` (0 for a word in every text, which removes
    it from the keywords); others are not listed (weight 1). Task-agnostic: it needs
    only the pool's texts.
    """
    docs = [{w.text.lower() for w in split_words(t) if not w.is_punctuation} for t in texts]
    if not docs:
        return {}
    counts: dict[str, int] = {}
    for words in docs:
        for w in words:
            counts[w] = counts.get(w, 0) + 1
    n = len(docs)
    return {w: 1.0 - c / n for w, c in counts.items() if c / n >= min_df}
