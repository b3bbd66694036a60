"""Reading label log-probabilities off top-k token lists (the chat and completions endpoints' route)."""

from __future__ import annotations

import math

import pytest

from amplify_agents.answering.toplogprobs import (
    TokenChoice,
    answer_start,
    label_scores_from_tokens,
    needs_more_tokens,
)


def test_distinct_first_tokens_are_read_at_the_first_position() -> None:
    tokens = [TokenChoice(" plausible", -0.2, {" plausible": -0.2, " imp": -1.9, " Yes": -4.0})]
    scores, outside = label_scores_from_tokens(tokens, ["plausible", "implausible"], "")
    assert outside == ()
    assert scores.logprobs == (-0.2, -1.9)  # " imp" spells the start of "implausible": its rest is taken as certain
    assert scores.predicted == "plausible"


def test_labels_sharing_a_first_token_follow_the_generated_path() -> None:
    tokens = [
        TokenChoice(" (", -0.02, {" (": -0.02, " a": -4.4}),
        TokenChoice("a", -0.33, {"a": -0.33, "b": -1.3}),
        TokenChoice(")", -0.01, {")": -0.01}),
    ]
    scores, outside = label_scores_from_tokens(tokens, ["(a)", "(b)"], "")
    assert outside == ()
    assert scores.logprobs == pytest.approx((-0.02 - 0.33 - 0.01, -0.02 - 1.3))
    # With only the first token the labels are still being spelled: more tokens are needed.
    assert needs_more_tokens(tokens[:1], ["(a)", "(b)"]) and not needs_more_tokens(tokens, ["(a)", "(b)"])


def test_a_label_outside_the_top_k_gets_an_upper_bound_and_is_reported() -> None:
    tokens = [TokenChoice(" yes", -0.1, {" yes": -0.1, " no": -2.5, " maybe": -6.0})]
    scores, outside = label_scores_from_tokens(tokens, ["yes", "zebra"], "")
    assert outside == ("zebra",)
    assert scores.logprobs[1] == -6.0  # the smallest listed: its true value is at most this
    assert math.isclose(sum(scores.probs.values()), 1.0)


def test_the_answer_is_read_after_the_last_answer_cue() -> None:
    text = ["Because", " dunks", ". The", " answer", " is", " plausible"]
    tokens = [TokenChoice(t, -0.1, {t: -0.1}) for t in text]
    tokens[-1] = TokenChoice(" plausible", -0.3, {" plausible": -0.3, " implausible": -1.4})
    assert answer_start(tokens, "The answer is ") == 5
    scores, outside = label_scores_from_tokens(tokens, ["plausible", "implausible"], "The answer is ")
    assert outside == () and scores.logprobs == (-0.3, -1.4)
