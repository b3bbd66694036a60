"""AmplifyMiddleware in a real ``create_agent`` agent, over a real Chroma store with MiniLM embeddings.

The agent loop runs on a small fake tool-calling chat model (it records every request it is
given: a tool call first, then an answer once the tool replied) and a real tool; one test runs
the offline Gemma as the agent's chat model (``ChatOpenAI`` over the project's local
OpenAI-compatible server).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from amplify_agents.agents import AmplifyMiddleware, AmplifyMiddlewareSettings
from amplify_agents.feedback import FeedbackLog
from amplify_agents.selectors import AmplifyExampleSelector

try:
    from .chain_fixtures import QUERIES, frame, sports, store  # noqa: F401 - fixtures
except ImportError:
    from chain_fixtures import QUERIES, frame, sports, store  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(300)

SYSTEM = "You judge whether sentences about sports are plausible."
ANSWER = "The answer is implausible"
SPORTS = {"Malcolm Brogdon": "basketball", "Gareth Bale": "soccer"}


@tool
def sport_of(player: str) -> str:
    """The sport a player plays."""
    return SPORTS.get(player, "unknown")


class ToolThenAnswer(BaseChatModel):
    """Calls ``sport_of`` on a user turn and answers once the tool replied; records each request."""

    requests: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "tool-then-answer"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolThenAnswer:
        return self  # the tool schema is not needed to call the one tool this model knows

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any):
        self.requests.append(list(messages))
        if isinstance(messages[-1], ToolMessage):
            reply = AIMessage(ANSWER)
        else:
            call = {"name": "sport_of", "args": {"player": "Gareth Bale"}, "id": f"call-{len(self.requests)}"}
            reply = AIMessage("", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


class CountingSelector(AmplifyExampleSelector):
    """The real selector, counting its retrievals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append("sync")
        return super().select_examples(input_variables)

    async def aselect_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append("async")
        return await super().aselect_examples(input_variables)


@pytest.fixture()
def selector(store, sports) -> CountingSelector:  # noqa: F811
    return CountingSelector(store, k=2, task=sports.name)


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def expected_demos(store, sports, query: str) -> list[dict[str, Any]]:  # noqa: F811
    return AmplifyExampleSelector(store, k=2, task=sports.name).select_examples({"input": query})


def state_text(messages: list[BaseMessage]) -> str:
    return "\n".join(m.text for m in messages)


def test_system_prompt_placement_reaches_every_model_call_once(selector, store, sports) -> None:  # noqa: F811
    model = ToolThenAnswer()
    agent = create_agent(
        model,
        tools=[sport_of],
        system_prompt=SYSTEM,
        middleware=[AmplifyMiddleware(selector)],
        checkpointer=InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "t1"}}
    one, two = list(QUERIES)
    state = agent.invoke(user(one), cfg)
    demos = expected_demos(store, sports, one)
    assert len(demos) == 2 and len(model.requests) == 2  # the tool call, then the answer
    for request in model.requests:
        system = request[0]
        assert isinstance(system, SystemMessage) and system.text.startswith(SYSTEM)
        for demo in demos:  # once each, in both calls of the loop
            assert system.text.count(demo["input"]) == 1 and system.text.count(demo["rationale"]) == 1
        assert [type(m) for m in request[1:2]] == [HumanMessage] and request[1].text == one
    assert isinstance(model.requests[1][-1], ToolMessage)
    assert selector.calls == ["sync"]  # retrieved once for the turn
    # Only the request held them: the agent's state is the plain conversation.
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai"]
    assert state["messages"][-1].text == ANSWER
    assert all(d["input"] not in state_text(state["messages"]) for d in demos)

    # The next turn retrieves for its own message; the first turn's demos are gone from the prompt.
    agent.invoke(user(two), cfg)
    new = expected_demos(store, sports, two)
    assert new != demos
    last = model.requests[-1][0].text
    assert all(d["input"] in last for d in new)
    assert all(d["input"] not in last for d in demos if d not in new)
    assert selector.calls == ["sync", "sync"]
    saved = agent.get_state(cfg).values["messages"]
    assert len(saved) == 8 and all(d["input"] not in state_text(saved) for d in demos + new)


def test_message_placement_puts_few_shot_pairs_before_the_conversation(selector, store, sports) -> None:  # noqa: F811
    model = ToolThenAnswer()
    settings = AmplifyMiddlewareSettings(placement="messages")
    agent = create_agent(
        model, tools=[sport_of], system_prompt=SYSTEM, middleware=[AmplifyMiddleware(selector, settings)]
    )
    query = next(iter(QUERIES))
    state = agent.invoke(user(query))
    demos = expected_demos(store, sports, query)
    for request in model.requests:
        assert request[0].text == SYSTEM  # the system prompt is left alone
        pairs = request[1 : 1 + 2 * len(demos)]
        assert [m.type for m in pairs] == ["human", "ai"] * len(demos)
        for (question, reply), demo in zip(zip(pairs[::2], pairs[1::2]), demos):
            assert question.text == demo["input"]
            assert reply.text == f"The answer is {demo['answer']}\n{demo['rationale']}"  # (x, y, r), the default
        assert request[1 + 2 * len(demos)].text == query
    assert len(model.requests[1]) == 1 + 2 * len(demos) + 3  # + the user turn, the tool call, its result
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai"]
    assert all(d["input"] not in state_text(state["messages"]) for d in demos)


def test_async_agent_retrieves_with_aselect_and_records_feedback(selector, store, sports, tmp_path: Path) -> None:  # noqa: F811
    log = FeedbackLog(store, tmp_path / "review.jsonl", task=sports)
    model = ToolThenAnswer()
    agent = create_agent(
        model, tools=[sport_of], system_prompt=SYSTEM, middleware=[AmplifyMiddleware(selector, feedback=log)]
    )
    query = list(QUERIES)[1]
    before = store.count()
    state = asyncio.run(agent.ainvoke(user(query)))
    demos = expected_demos(store, sports, query)
    # Once, through aselect_examples (which may run select_examples in LangChain's executor).
    assert selector.calls in (["async"], ["async", "sync"])
    assert all(d["input"] in model.requests[1][0].text for d in demos)
    assert state["messages"][-1].text == ANSWER
    # The answer waits in the review queue, unverified, with the demonstrations that were shown.
    [item] = log.review_queue()
    assert (item.query, item.answer, item.verified, item.gold) == (query, ANSWER, False, None)
    assert item.demo_ids == [d["demo_id"] for d in demos]
    assert store.count() == before  # never into the store


class Requests(BaseCallbackHandler):
    """Remembers the messages of every chat model call."""

    def __init__(self) -> None:
        self.messages: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any) -> None:
        self.messages.extend(messages)


@pytest.mark.slow
def test_local_gemma_agent_gets_the_demonstrations(gemma, selector, store, sports, frame) -> None:  # noqa: F811
    from langchain_openai import ChatOpenAI

    from amplify_agents.serving import serve

    query = next(iter(QUERIES))
    with serve(gemma, model_name="gemma-local") as server:
        model = ChatOpenAI(
            base_url=server.base_url, api_key="local", model="gemma-local", temperature=0, max_tokens=12, max_retries=0
        )
        agent = create_agent(model, system_prompt=frame.instruction, middleware=[AmplifyMiddleware(selector)])
        seen = Requests()
        state = agent.invoke(user(query), {"callbacks": [seen]})
    [request] = seen.messages
    assert all(d["input"] in request[0].text for d in expected_demos(store, sports, query))
    answer = state["messages"][-1]
    assert isinstance(answer, AIMessage) and answer.text.strip()
    assert [m.type for m in state["messages"]] == ["human", "ai"]
