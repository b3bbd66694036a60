"""AmplifyMiddleware's request rewriting, without a model or a store (a fixed selector).

The agent loop itself, a real store and the local model are in
tests/integration/test_agent_middleware.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from amplify_agents.agents import AmplifyMiddleware, AmplifyMiddlewareSettings
from amplify_agents.errors import InputTooLongError
from amplify_agents.framing import Frame
from amplify_agents.limits import TextLimits
from amplify_agents.prompts import PromptStyle

DEMOS = [
    {"input": "Messi scored a goal.", "rationale": "Messi plays football.", "answer": "plausible", "demo_id": "d1"},
    {
        "input": "Messi hit a home run.",
        "rationale": "Home runs are baseball.",
        "answer": "implausible",
        "demo_id": "d2",
    },
]
FRAME = Frame(input_prefix="\nStatement: ", output_prefix="\nAnswer:")


class FixedSelector(BaseExampleSelector):
    """The same demonstrations for every query; records the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def add_example(self, example: dict[str, str]) -> Any:
        raise NotImplementedError

    def select_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
        self.queries.append(input_variables["input"])
        return [dict(d) for d in DEMOS]


def request(*messages: Any, system: SystemMessage | None = SystemMessage("Be brief.")) -> ModelRequest:
    return ModelRequest(model=FakeListChatModel(responses=["ok"]), messages=list(messages), system_message=system)


def run(middleware: AmplifyMiddleware, req: ModelRequest) -> ModelRequest:
    seen: list[ModelRequest] = []

    def handler(r: ModelRequest) -> ModelResponse:
        seen.append(r)
        return ModelResponse(result=[AIMessage("ok")])

    middleware.wrap_model_call(req, handler)
    [sent] = seen
    return sent


def test_system_prompt_gets_the_frames_text_demonstrations() -> None:
    paper = PromptStyle(frame=FRAME, rationale_first=True)  # (x, r, y), as in both papers
    middleware = AmplifyMiddleware(FixedSelector(), AmplifyMiddlewareSettings(style=paper))
    original = request(HumanMessage("LeBron dunked.", id="m1"))
    sent = run(middleware, original)
    assert sent.system_prompt == (
        "Be brief.\n\nSolved examples, each with its reasoning before the answer:\n\n"
        "Statement: Messi scored a goal.\nMessi plays football.\nAnswer: plausible\n\n"
        "Statement: Messi hit a home run.\nHome runs are baseball.\nAnswer: implausible"
    )
    assert sent.messages == original.messages and original.system_prompt == "Be brief."  # a copy changed
    # (x, y, r), the library's default layout; a request without a system prompt gets one.
    late = AmplifyMiddleware(FixedSelector(), AmplifyMiddlewareSettings(style=PromptStyle(FRAME)))
    text = run(late, request(HumanMessage("q"), system=None)).system_prompt
    assert text is not None and text.startswith("Solved examples, each answer followed by its reasoning:")
    assert "Statement: Messi scored a goal.\nAnswer: plausible\nMessi plays football." in text


def test_system_prompt_content_blocks_are_kept() -> None:
    blocks = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    sent = run(AmplifyMiddleware(FixedSelector()), request(HumanMessage("q"), system=SystemMessage(blocks)))
    assert isinstance(sent.system_message, SystemMessage)
    assert sent.system_message.content[0] == blocks[0]
    assert "Q: Messi hit a home run." in sent.system_message.text  # the selector's default frame


def test_messages_placement_and_the_latest_user_turn() -> None:
    selector = FixedSelector()
    middleware = AmplifyMiddleware(selector, AmplifyMiddlewareSettings(placement="messages"))
    history = [HumanMessage("first", id="a"), AIMessage("one"), HumanMessage("second", id="b"), AIMessage("")]
    sent = run(middleware, request(*history))
    assert [m.text for m in sent.messages[:4]] == [
        "Messi scored a goal.",
        "The answer is plausible\nMessi plays football.",  # (x, y, r), the library's default
        "Messi hit a home run.",
        "The answer is implausible\nHome runs are baseball.",
    ]
    assert sent.messages[4:] == history and sent.system_prompt == "Be brief."
    assert selector.queries == ["second"]  # retrieved for the latest user message


def test_each_user_message_is_retrieved_for_once() -> None:
    selector = FixedSelector()
    middleware = AmplifyMiddleware(selector, AmplifyMiddlewareSettings(cache_size=1))
    turn = HumanMessage("q", id="t1")
    first = run(middleware, request(turn))
    again = run(middleware, request(turn, AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c"}])))
    assert selector.queries == ["q"] and first.system_prompt == again.system_prompt
    run(middleware, request(HumanMessage("q", id="t2")))  # a new turn with the same words
    run(middleware, request(turn))  # evicted by cache_size=1
    assert selector.queries == ["q", "q", "q"]


def test_no_user_message_no_demonstrations() -> None:
    selector = FixedSelector()
    sent = run(AmplifyMiddleware(selector), request(AIMessage("hello")))
    assert sent.system_prompt == "Be brief." and selector.queries == []


def test_bad_settings_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="placement"):
        AmplifyMiddlewareSettings(placement="prefix")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_size"):
        AmplifyMiddlewareSettings(cache_size=0)
    with pytest.raises(TypeError, match="example selector"):
        AmplifyMiddleware(DEMOS)  # type: ignore[arg-type]
    short = AmplifyMiddleware(FixedSelector(), AmplifyMiddlewareSettings(limits=TextLimits(max_input_chars=10)))
    with pytest.raises(InputTooLongError, match="latest user message.*max_input_chars"):
        run(short, request(HumanMessage("x" * 11)))
