"""Property tests of word splitting, token-to-word mapping, aggregation and keyword ranking.

The properties, read from :mod:`amplify_agents.explainers.words`: words are non-empty, sorted,
disjoint spans of the text that cover every character except whitespace; a token maps to
exactly the words its span overlaps (checked against a brute-force oracle, for spans anywhere,
empty, reversed or past the text); "sum" aggregation conserves the total score when each token
maps to at most one word, "mean" stays within its tokens' range, "max" picks a token's score; a
word no token covers is NaN; keywords are distinct, finite, ranked best first, never stop words
or punctuation. Arbitrary unicode (combining marks, RTL, line separators, emoji) never crashes.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from amplify_agents.explainers.words import (
    DEFAULT_STOPWORDS,
    aggregate,
    rank_words,
    split_words,
    tokens_to_words,
)

_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list(" \t\n\u2028\u0085\u00a0'’-\u0301.,!") + ["a", "b"]),
    ),
    max_size=60,
)
_SCORE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_words_are_disjoint_spans_covering_all_but_whitespace(text: str) -> None:
    words = split_words(text)
    covered = [False] * len(text)
    previous_end = 0
    for w in words:
        assert w.text and text[w.start : w.end] == w.text
        assert w.start >= previous_end  # sorted and disjoint
        previous_end = w.end
        for i in range(w.start, w.end):
            covered[i] = True
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))
    assert all(not ch.isspace() for w in words for ch in w.text if not w.is_punctuation)


_SPANS = st.lists(
    st.one_of(st.none(), st.tuples(st.integers(0, 70), st.integers(0, 70))),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(_TEXT, _SPANS)
def test_tokens_map_to_exactly_the_words_they_overlap(text: str, spans: list[tuple[int, int] | None]) -> None:
    words = split_words(text)
    mapped = tokens_to_words(spans, words)
    assert len(mapped) == len(spans)
    for span, ids in zip(spans, mapped):
        if span is None or span[1] <= span[0]:
            assert ids == []
            continue
        lo, hi = span
        assert ids == [i for i, w in enumerate(words) if w.start < hi and w.end > lo]


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(0, 10))
def test_aggregation_conserves_and_bounds_scores(data: st.DataObject, n_words: int) -> None:
    n_tokens = data.draw(st.integers(0, 15))
    scores = data.draw(st.lists(_SCORE, min_size=n_tokens, max_size=n_tokens))
    one_word = st.lists(st.integers(0, n_words - 1), max_size=1) if n_words else st.just([])
    token_words = data.draw(st.lists(one_word, min_size=n_tokens, max_size=n_tokens))

    summed = aggregate(scores, token_words, n_words, "sum")
    means = aggregate(scores, token_words, n_words, "mean")
    maxes = aggregate(scores, token_words, n_words, "max")
    assert len(summed) == len(means) == len(maxes) == n_words
    hit = sum(s for s, ids in zip(scores, token_words) if ids)
    assert math.isclose(sum(v for v in summed if not math.isnan(v)), hit, rel_tol=1e-9, abs_tol=1e-6)
    for w in range(n_words):
        own = [s for s, ids in zip(scores, token_words) if w in ids]
        if not own:
            assert math.isnan(summed[w]) and math.isnan(means[w]) and math.isnan(maxes[w])
            continue
        assert min(own) - 1e-6 <= means[w] <= max(own) + 1e-6
        assert maxes[w] in own and abs(maxes[w]) == max(abs(s) for s in own)


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.data(), st.integers(0, 6), st.sampled_from(["score", "abs"]))
def test_keywords_are_distinct_finite_and_best_first(text: str, data: st.DataObject, k: int, rank_by: str) -> None:
    words = split_words(text)
    scores = data.draw(st.lists(st.one_of(_SCORE, st.just(float("nan"))), min_size=len(words), max_size=len(words)))
    chosen = rank_words(words, scores, k, rank_by=rank_by)  # type: ignore[arg-type]
    assert len(chosen) <= k and len(set(chosen)) == len(chosen)
    keys = [words[i].text.lower().replace("’", "'") for i in chosen]
    assert len(set(keys)) == len(keys)
    assert all(math.isfinite(scores[i]) and not words[i].is_punctuation for i in chosen)
    assert not set(keys) & {s.replace("’", "'") for s in DEFAULT_STOPWORDS}
    values = [abs(scores[i]) if rank_by == "abs" else scores[i] for i in chosen]
    assert values == sorted(values, reverse=True)
