"""Where a demonstration's rationale goes ((x, r, y) or (x, y, r)) is one setting, read by every layout.

The library's default (``DEFAULTS.placement``) reaches the text and chat prompts, the LangChain
templates, the agent middleware and the answering path; (x, y, r) works in chat form too, and a
chat reply in that layout is read back as answer first, rationale after.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from langchain.agents.middleware import ModelRequest
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage

from amplify_agents.agents import AmplifyMiddleware, AmplifyMiddlewareSettings
from amplify_agents.answering import AnswerBackend, Answerer, AnswerSettings, parse_completion
from amplify_agents.defaults import DEFAULTS, Defaults
from amplify_agents.eval.methods import parse_method
from amplify_agents.framing import Frame
from amplify_agents.prompts import (
    PromptStyle,
    build_chat_messages,
    build_prompt,
    build_text_prompt,
    few_shot_chat_template,
    few_shot_text_template,
)

FRAME = Frame(instruction="Sort.\n", input_prefix="\nQ: ", output_prefix="\nA:", label_prefix=" ")
DEMOS = [{"input": "x1", "rationale": "R1.", "answer": "yes"}, {"input": "x2", "rationale": "", "answer": "no"}]


class ChatOnly(AnswerBackend):
    """Layout only: a chat-form backend that is never asked to answer."""

    form = "chat"

    def answer(self, prompts, label_lists, how=None):  # type: ignore[no-untyped-def]
        raise AssertionError("not called")

    def generate(self, prompts, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("not called")


def _default(func: object, name: str) -> object:
    return inspect.signature(func).parameters[name].default  # type: ignore[arg-type]


def test_every_layout_defaults_to_the_librarys_placement() -> None:
    first = DEFAULTS.rationale_first
    assert PromptStyle().rationale_first is first
    assert AnswerSettings().placement == DEFAULTS.placement
    for func in (build_text_prompt, few_shot_text_template, build_chat_messages, few_shot_chat_template, Frame.demo):
        assert _default(func, "rationale_first") is first, func.__name__
    assert parse_method("amplify").placement == DEFAULTS.placement


def test_the_shorthand_follows_the_default_and_takes_an_explicit_placement() -> None:
    assert Defaults(placement="xyr").amplify_method.endswith("+xyr")
    assert not Defaults(placement="xry").amplify_method.endswith("+xyr")
    assert parse_method("amplify+gen").placement == "gen"  # an explicit placement wins over the default's
    assert parse_method("amplify+xyr+cal").name.endswith("+xyr+cal")
    with pytest.raises(ValueError, match="Unknown placement 'ryx'"):
        Defaults(placement="ryx")  # type: ignore[arg-type]


@pytest.mark.parametrize("placement", ["xry", "xyr"])
def test_chat_demonstrations_follow_the_placement(placement: str) -> None:
    answerer = Answerer(ChatOnly(), AnswerSettings(PromptStyle(FRAME), placement=placement))  # type: ignore[arg-type]
    messages = answerer.prompt("q", DEMOS)
    ai = [m.text for m in messages if isinstance(m, AIMessage)]
    if placement == "xry":
        assert ai == ["R1. The answer is yes", "The answer is no"]
    else:
        assert ai == ["The answer is yes\nR1.", "The answer is no"]
    # The LangChain template lays out the same assistant turn.
    template = few_shot_chat_template(FRAME, examples=DEMOS[:1], rationale_first=placement == "xry")
    assert [m.text for m in template.format_messages(input="q") if isinstance(m, AIMessage)] == ai[:1]


def test_the_placement_overrides_the_styles_layout() -> None:
    style = PromptStyle(FRAME, rationale_first=False)
    text = Answerer(ChatOnly(), AnswerSettings(style, placement="xry")).style.rationale_first
    assert text is True
    assert build_text_prompt("q", DEMOS[:1], FRAME, rationale_first=False) == "Sort.\n\nQ: x1\nA: yes\nR1.\n\nQ: q\nA:"
    assert few_shot_text_template(FRAME, examples=DEMOS[:1], rationale_first=False).format(input="q") == (
        "Sort.\n\nQ: x1\nA: yes\nR1.\n\nQ: q\nA:"
    )


def test_a_model_asked_to_reason_first_sees_rationales_before_answers() -> None:
    style = PromptStyle(FRAME, rationale_first=False, generate_rationale=True)
    assert build_prompt("q", DEMOS[:1], style) == "Sort.\n\nQ: x1\nR1.\nA: yes\n\nQ: q\n"


def test_a_chat_reply_with_the_rationale_after_the_answer_is_read_answer_first() -> None:
    after = PromptStyle(FRAME, rationale_first=False)
    before = PromptStyle(FRAME, rationale_first=True)
    reply = "The answer is no\nThe key words: x and y are important clues to predict yes as the correct answer."
    rationale, answer = parse_completion(reply, ["yes", "no"], "chat", after)
    assert answer == "no" and rationale.startswith("The key words:")
    # Read as (x, r, y), the rationale is what comes before the cue: nothing.
    assert parse_completion(reply, ["yes", "no"], "chat", before) == ("", "no")
    # A reply without the cue: the whole text is searched, as in (x, r, y).
    assert parse_completion("no.", ["yes", "no"], "chat", after) == ("", "no")


def test_the_middleware_lays_out_demonstrations_in_the_styles_placement() -> None:
    class Fixed(BaseExampleSelector):
        def add_example(self, example: dict[str, str]) -> Any:
            raise NotImplementedError

        def select_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
            return DEMOS[:1]

    after = PromptStyle(FRAME, rationale_first=False)
    text = AmplifyMiddleware(Fixed(), AmplifyMiddlewareSettings(style=after)).demonstration_text(DEMOS[:1])
    assert text == "Solved examples, each answer followed by its reasoning:\n\nQ: x1\nA: yes\nR1."
    before = AmplifyMiddleware(Fixed(), AmplifyMiddlewareSettings(style=PromptStyle(FRAME, rationale_first=True)))
    assert before.demonstration_text(DEMOS[:1]).startswith(
        "Solved examples, each with its reasoning before the answer:"
    )
    pairs = AmplifyMiddleware(Fixed(), AmplifyMiddlewareSettings(placement="messages", style=after))
    req = ModelRequest(model=FakeListChatModel(responses=["ok"]), messages=[HumanMessage("q")], system_message=None)
    messages = pairs.with_demonstrations(req, DEMOS[:1]).messages
    assert [m.text for m in messages] == ["x1", "The answer is yes\nR1.", "q"]
