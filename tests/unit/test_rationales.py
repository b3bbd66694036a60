"""Rationale templates render with correct English and named fields."""

from __future__ import annotations

import pytest

from amplify_agents.rationales import (
    AMPLIFY,
    P_STEP,
    SELF_TOPK,
    RationaleTemplate,
    get_template,
    join_english,
    register_template,
)


@pytest.mark.parametrize(
    ("words", "expected"),
    [([], ""), (["a"], "a"), (["a", "b"], "a and b"), (["a", "b", "c"], "a, b and c"), (["x", "", "y"], "x and y")],
)
def test_join_english(words: list[str], expected: str) -> None:
    assert join_english(words) == expected


def test_amplify_template() -> None:
    text = AMPLIFY.render("(b)", ["gruel", "breakfast", "expensive"])
    assert (
        text
        == "The key words: gruel, breakfast and expensive are important clues to predict (b) as the correct answer."
    )


def test_self_topk_and_p_step() -> None:
    assert SELF_TOPK.render("Yes", ["intended", "harm"]).startswith("The 2 keywords intended and harm are")
    text = P_STEP.render("No", explanation="He did not know. The act was an accident.", p=2)
    assert text == "2-step rationale: He did not know. The act was an accident, therefore the answer is No."


def test_custom_template_with_ranked_fields() -> None:
    t = RationaleTemplate("mine", "{w1} matters most for {label}.")
    assert t.render("yes", ["alpha", "beta"]) == "alpha matters most for yes."
    with pytest.raises(ValueError, match="w1"):
        t.render("yes", [])
    with pytest.raises(ValueError, match="explanation"):
        P_STEP.render("yes", ["a"])


def test_registry() -> None:
    assert get_template("amplify") is AMPLIFY
    register_template(RationaleTemplate("test-reg", "{label}"))
    with pytest.raises(ValueError, match="exists"):
        register_template(RationaleTemplate("test-reg", "other {label}"))
    with pytest.raises(ValueError, match="Unknown"):
        get_template("nope")
