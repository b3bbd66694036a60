"""The answer parser maps free text onto a label space and never guesses."""

from __future__ import annotations

import pytest

from amplify_agents.models.parsing import parse_answer


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("The answer is (B).", ["(a)", "(b)"], "(b)"),
        ("(a)", ["(a)", "(b)"], "(a)"),
        ("  b ", ["(a)", "(b)"], "(b)"),
        ("Answer: (b) because (a) is literal", ["(a)", "(b)"], "(b)"),
        ("no", ["Yes", "No"], "No"),
        ("Yes, the CEO intended it.", ["Yes", "No"], "Yes"),
        ("implausible", ["plausible", "implausible"], "implausible"),
        ("It sounds plausible to me.", ["plausible", "implausible"], "plausible"),
        ("Therefore, the answer is implausible.", ["plausible", "implausible"], "implausible"),
    ],
)
def test_parses(text: str, labels: list[str], expected: str) -> None:
    assert parse_answer(text, labels) == expected


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("plausible or implausible?", ["plausible", "implausible"]),
        ("I cannot tell.", ["Yes", "No"]),
        ("", ["Yes", "No"]),
        ("Both (a) and (b) are sarcastic", ["(a)", "(b)"]),
    ],
)
def test_unparseable_is_none(text: str, labels: list[str]) -> None:
    assert parse_answer(text, labels) is None


def test_colliding_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="collide"):
        parse_answer("a", ["(a)", "A"])
