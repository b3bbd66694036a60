"""Words, token-to-word mapping, aggregation and top-k ranking on hard cases.

Two tests use the real MiniLM (WordPiece) and Gemma (SentencePiece) tokenizers for
their offsets: tokenizers only, no model weights.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from amplify_agents.explainers.words import (
    DEFAULT_STOPWORDS,
    Word,
    aggregate,
    rank_words,
    split_words,
    tokens_to_words,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def texts(words: list[Word]) -> list[str]:
    return [w.text for w in words]


# ------------------------------------------------------------------ split_words
def test_punctuation_is_split_from_words_and_spans_index_the_text() -> None:
    text = "Hello, world! (a) don't well-known"
    words = split_words(text)
    assert texts(words) == ["Hello", ",", "world", "!", "(", "a", ")", "don't", "well-known"]
    assert all(text[w.start : w.end] == w.text for w in words)
    assert [w.is_punctuation for w in words[:4]] == [False, True, False, True]


def test_non_ascii_words_stay_whole() -> None:
    text = "naïve café — über"
    words = split_words(text)
    assert texts(words) == ["naïve", "café", "—", "über"]
    assert all(text[w.start : w.end] == w.text for w in words)
    assert words[2].is_punctuation


def test_empty_and_blank_text_have_no_words() -> None:
    assert split_words("") == []
    assert split_words("  \n\t ") == []


# ------------------------------------------------------------- tokens_to_words
def test_a_token_with_glued_punctuation_maps_to_both_words() -> None:
    words = split_words("Hello world!")  # Hello, world, !
    # One token "world!" (byte-level BPE style, leading space included) and one for "Hello".
    mapping = tokens_to_words([(0, 5), (5, 12)], words)
    assert mapping == [[0], [1, 2]]


def test_tokens_outside_the_text_and_empty_spans_map_to_nothing() -> None:
    words = split_words("a b")
    assert tokens_to_words([None, (0, 0), (1, 2), (3, 3)], words) == [[], [], [], []]


def test_subword_tokens_map_to_their_word() -> None:
    words = split_words("unbelievably good")
    assert tokens_to_words([(0, 2), (2, 9), (9, 12), (12, 17)], words) == [[0], [0], [0], [1]]


# ------------------------------------------------------------------- aggregate
def test_mean_sum_and_max_aggregation() -> None:
    token_words = [[0], [0], [1], []]
    scores = [1.0, 3.0, -5.0, 100.0]  # the last token is outside the text: ignored
    mean = aggregate(scores, token_words, 3, "mean")
    total = aggregate(scores, token_words, 3, "sum")
    assert mean[:2] == [2.0, -5.0] and total[:2] == [4.0, -5.0]
    assert math.isnan(mean[2]) and math.isnan(total[2])  # a word no token covers has no score
    assert aggregate([1.0, -3.0, 2.0], [[0], [0], [1]], 2, "max") == [-3.0, 2.0]  # largest magnitude, signed
    with pytest.raises(ValueError, match="Unknown aggregation"):
        aggregate([1.0], [[0]], 1, "median")  # type: ignore[arg-type]


def test_a_glued_token_gives_its_score_to_each_word_it_covers() -> None:
    words = split_words("Hello world!")
    word_scores = aggregate([0.2, 0.9], tokens_to_words([(0, 5), (5, 12)], words), len(words))
    assert word_scores == [0.2, 0.9, 0.9]
    # ...but "!" is punctuation, so it is never a keyword.
    assert [words[i].text for i in rank_words(words, word_scores, 3)] == ["world", "Hello"]


# ------------------------------------------------------------------ rank_words
def test_stop_words_and_punctuation_are_never_keywords() -> None:
    words = split_words("The cat, and the dog!")
    scores = [9.0, 1.0, 8.0, 7.0, 6.0, 2.0, 10.0]
    assert [words[i].text for i in rank_words(words, scores, 10)] == ["dog", "cat"]
    # Turning the filters off lets them through.
    got = rank_words(words, scores, 10, stopwords=(), exclude_punctuation=False)
    assert [words[i].text for i in got] == ["!", "The", ",", "and", "dog", "cat"]  # "the" is "The" again
    assert "the" in DEFAULT_STOPWORDS


def test_a_repeated_word_counts_once_at_its_best_occurrence() -> None:
    words = split_words("Zebra zebra ZEBRA walnut lion")
    idx = rank_words(words, [0.1, 0.9, 0.5, 0.3, 0.2], 2)
    assert idx == [1, 3]  # the second "zebra" (best), then walnut: not zebra twice
    assert [words[i].text for i in rank_words(words, [0.1, 0.9, 0.5, 0.3, 0.2], 10)] == [
        "zebra",
        "walnut",
        "lion",
    ]


def test_k_larger_than_the_words_returns_all_eligible_words() -> None:
    words = split_words("red, blue and green.")
    assert [words[i].text for i in rank_words(words, [3, 0, 2, 0, 1, 0], 50)] == ["red", "blue", "green"]


def test_ties_go_to_the_earlier_word_and_abs_ranks_by_magnitude() -> None:
    words = split_words("alpha beta gamma delta")
    assert rank_words(words, [0.5, 0.5, 0.7, 0.5], 4) == [2, 0, 1, 3]
    # rank_by="abs": -0.9 is the largest magnitude; +0.5 / -0.5 tie and keep text order.
    assert rank_words(words, [0.5, -0.9, -0.5, 0.1], 4, rank_by="abs") == [1, 0, 2, 3]
    # By signed score, the negative words come last.
    assert rank_words(words, [0.5, -0.9, -0.5, 0.1], 4) == [0, 3, 2, 1]


def test_nan_scores_are_skipped_and_weights_down_weight_words() -> None:
    words = split_words("common rare other")
    assert rank_words(words, [float("nan"), 0.2, 0.1], 3) == [1, 2]
    assert rank_words(words, [1.0, 0.6, 0.1], 3, weights={"common": 0.5}) == [1, 0, 2]


# ----------------------------------------------------------- real tokenizers
def _minilm_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from amplify_agents.models.loading import default_cache_dir
    from amplify_agents.models.registry import resolve_offline

    return AutoTokenizer.from_pretrained(resolve_offline("all-MiniLM-L6-v2").locate(default_cache_dir()))


def _gemma_tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from amplify_agents.models.loading import default_cache_dir

    converted = sorted(p for p in (Path(default_cache_dir()) / "converted").glob("gemma-3-270m*") if p.is_dir())
    if not converted:
        pytest.skip("Gemma has not been converted yet (load_causal_lm('gemma-3-270m') once to create it).")
    return AutoTokenizer.from_pretrained(converted[-1])


def test_minilm_wordpiece_offsets_map_onto_words_of_the_original_text() -> None:
    tok = _minilm_tokenizer()
    text = "Naïve café owners unbelievably love it!"
    enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    # [CLS]/[SEP] have (0, 0) offsets: special tokens are not features.
    offsets = [
        None if sp else tuple(o) for o, sp in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True)
    ]
    words = split_words(text)
    mapping = tokens_to_words(offsets, words)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    assert mapping[0] == [] and mapping[-1] == []  # [CLS], [SEP]
    # The tokenizer strips accents ("naive"), but offsets still point into the original.
    assert pieces[1] == "naive" and words[mapping[1][0]].text == "Naïve"
    # Every word is covered, and a word split into word pieces collects all of them.
    covered = sorted({w for ws in mapping for w in ws})
    assert covered == list(range(len(words)))
    i = texts(words).index("unbelievably")
    n_pieces = sum(1 for ws in mapping if ws == [i])
    assert n_pieces >= 2, pieces
    scores = [0.0] + [1.0] * (len(pieces) - 2) + [0.0]
    w_sum = aggregate(scores, mapping, len(words), "sum")
    w_mean = aggregate(scores, mapping, len(words), "mean")
    assert w_sum[i] == n_pieces and w_mean[i] == 1.0


def test_gemma_sentencepiece_offsets_with_leading_spaces_map_onto_words() -> None:
    tok = _gemma_tokenizer()
    prompt = "Instruction\nQ: Hello world! naïve café\nA:"
    start = prompt.index("Hello")
    text = "Hello world! naïve café"
    enc = tok(prompt, return_offsets_mapping=True, return_special_tokens_mask=True)
    offsets = []
    for (s, e), sp in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True):
        inside = not sp and e > s and e > start and s < start + len(text)
        offsets.append((max(s, start) - start, min(e, start + len(text)) - start) if inside else None)
    words = split_words(text)
    mapping = tokens_to_words(offsets, words)
    # "▁world" covers the space before "world": it still maps to "world" alone.
    hits = [[words[w].text for w in ws] for ws in mapping if ws]
    assert ["Hello"] in hits and ["world"] in hits and ["!"] in hits
    assert ["naïve"] in hits and ["café"] in hits
    assert all(len(ws) == 1 for ws in mapping if ws)  # no token spans two words here
    # Template tokens ("Instruction", "Q", ":", "A") have no word.
    assert sum(1 for ws in mapping if ws) == len(tok(text, add_special_tokens=False)["input_ids"])
