"""Chain layout with fake LLMs: prompts, answer parsing, result fields, routing and fallback.

No model, no store: a fixed selector and LangChain's fake LLMs. The real models and a real
Chroma store are exercised in tests/integration/test_chains.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever

from amplify_agents.chains import (
    AmplifyResult,
    PromptStyle,
    RouteSettings,
    create_amplify_chain,
    create_amplify_chatbot,
    create_amplify_rag_chain,
    create_plain_rag_chain,
    parse_completion,
)
from amplify_agents.chains.amplify import build_prompt
from amplify_agents.framing import Frame
from amplify_agents.prompts import build_chat_messages, build_text_prompt

LABELS = ["plausible", "implausible"]
FRAME = Frame(
    instruction="Is the statement plausible or implausible?",
    input_prefix="\nStatement: ",
    output_prefix="\nAnswer:",
)
DEMOS = [
    {
        "input": "Messi scored a goal.",
        "rationale": "Messi plays football.",
        "answer": "plausible",
        "demo_id": "d1",
    },
    {
        "input": "Messi hit a home run.",
        "rationale": "Home runs are baseball.",
        "answer": "implausible",
        "demo_id": "d2",
    },
]
QUERY = "LeBron James dunked the ball."


class FixedSelector(BaseExampleSelector):
    """Returns the same demonstrations for every query, and records the queries."""

    def __init__(self, demos: list[dict[str, Any]]) -> None:
        self.demos = demos
        self.queries: list[str] = []

    def add_example(self, example: dict[str, str]) -> Any:
        self.demos.append(example)

    def select_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
        self.queries.append(input_variables["input"])
        return [dict(d) for d in self.demos]


class DownChatModel(FakeListChatModel):
    """A chat model whose endpoint is down: every call raises (and is counted)."""

    calls: int = 0
    error: type[Exception] = ConnectionError

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        raise self.error("endpoint down")


class Counter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.chains = 0
        self.llms = 0

    def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
        self.chains += 1

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self.llms += 1


class ListRetriever(BaseRetriever):
    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self.docs


def test_text_prompt_is_the_amplify_layout_and_the_answer_is_parsed() -> None:
    chain = create_amplify_chain(
        FixedSelector(DEMOS), labels=LABELS, frame=FRAME, local=FakeListLLM(responses=[" implausible\nfoo"])
    )
    result = chain.invoke(QUERY)
    assert isinstance(result, AmplifyResult)
    assert result.prompt == build_text_prompt(QUERY, DEMOS, FRAME)
    # (x, y, r), the library's default: each demo's rationale follows its answer; the prompt ends at
    # the answer cue.
    assert "Messi scored a goal.\nAnswer: plausible\nMessi plays football." in result.prompt
    assert result.prompt.endswith("\nStatement: LeBron James dunked the ball.\nAnswer:")
    assert result.answer == "implausible"
    assert result.raw_text == " implausible\nfoo"
    assert result.demonstrations == DEMOS and result.demo_ids == ["d1", "d2"]
    assert result.label_probs is None
    assert (result.route, result.fallback, result.model) == ("local", False, "FakeListLLM")
    assert result.rationale == ""


def test_generate_rationale_ends_the_prompt_after_the_query() -> None:
    llm = FakeListLLM(responses=["LeBron plays basketball.\nAnswer: plausible\nStatement: next"])
    style = PromptStyle(frame=FRAME, generate_rationale=True)
    chain = create_amplify_chain(FixedSelector(DEMOS), labels=LABELS, style=style, local=llm)
    result = chain.invoke({"input": QUERY})
    assert result.prompt.endswith("\nStatement: LeBron James dunked the ball.\n")
    assert result.rationale == "LeBron plays basketball."
    assert result.answer == "plausible"


def test_chat_form_for_chat_models() -> None:
    chat = FakeListChatModel(responses=["Dunking is basketball. The answer is plausible."])
    chain = create_amplify_chain(FixedSelector(DEMOS), labels=LABELS, frame=FRAME, hosted=chat)
    result = chain.invoke(QUERY)
    assert (result.route, result.answer, result.rationale) == (
        "hosted",
        "plausible",
        "Dunking is basketball.",
    )
    expected = build_chat_messages(QUERY, DEMOS, FRAME)
    assert result.prompt == "\n".join(
        f"{m.type.replace('human', 'Human').replace('ai', 'AI').replace('system', 'System')}: {m.content}"
        for m in expected
    )
    assert "AI: The answer is plausible\nMessi plays football." in result.prompt  # (x, y, r), the default


def test_unparseable_answers_are_none_and_labels_can_come_with_the_input() -> None:
    llm = FakeListLLM(responses=[" maybe"])
    chain = create_amplify_chain(FixedSelector(DEMOS), labels=LABELS, frame=FRAME, local=llm)
    assert chain.invoke(QUERY).answer is None
    llm = FakeListLLM(responses=[" (B)"])
    chain = create_amplify_chain(FixedSelector(DEMOS), frame=FRAME, local=llm)
    assert chain.invoke({"input": QUERY, "labels": ["(A)", "(B)"]}).answer == "(B)"
    # Without any label space the answer is the first line of the text.
    assert (
        create_amplify_chain(None, frame=FRAME, local=FakeListLLM(responses=[" blue sky.\nQ"])).invoke("Colour?").answer
        == "blue sky"
    )


@pytest.mark.parametrize(
    ("text", "form", "generate_rationale", "expected"),
    [
        (" plausible", "text", False, ("", "plausible")),
        ("\n implausible.\nStatement", "text", False, ("", "implausible")),
        ("Because dunks.\nAnswer: implausible", "text", True, ("Because dunks.", "implausible")),
        ("no cue but implausible", "text", True, ("no cue but implausible", "implausible")),
        ("A. B. The answer is (implausible).", "chat", False, ("A. B.", "implausible")),
        ("implausible", "chat", False, ("", "implausible")),
        ("plausible or implausible?", "chat", False, ("", None)),
    ],
)
def test_parse_completion(text: str, form: str, generate_rationale: bool, expected: tuple[str, str | None]) -> None:
    style = PromptStyle(frame=FRAME, generate_rationale=generate_rationale)
    assert parse_completion(text, LABELS, form, style) == expected  # type: ignore[arg-type]


def test_route_switch_by_configuration() -> None:
    chain = create_amplify_chain(
        FixedSelector(DEMOS),
        labels=LABELS,
        frame=FRAME,
        local=FakeListLLM(responses=[" plausible"]),
        hosted=FakeListChatModel(responses=["The answer is implausible"]),
    )
    assert chain.invoke(QUERY).route == "local"
    hosted = chain.with_config(configurable={"llm": "hosted"}).invoke(QUERY)
    assert (hosted.route, hosted.answer, hosted.fallback, hosted.model) == (
        "hosted",
        "implausible",
        False,
        "FakeListChatModel",
    )
    assert chain.invoke(QUERY, config={"configurable": {"llm": "local"}}).route == "local"
    with pytest.raises(ValueError, match="nknown alternative"):
        chain.invoke(QUERY, config={"configurable": {"llm": "nowhere"}})
    hosted_default = create_amplify_chain(
        FixedSelector(DEMOS),
        labels=LABELS,
        frame=FRAME,
        local=FakeListLLM(responses=[" plausible"]),
        hosted=FakeListChatModel(responses=["The answer is implausible"]),
        routing=RouteSettings(default_route="hosted"),
    )
    assert hosted_default.invoke(QUERY).route == "hosted"


def test_hosted_failure_is_retried_then_the_local_model_answers() -> None:
    down = DownChatModel(responses=["unused"])
    chain = create_amplify_chain(
        FixedSelector(DEMOS),
        labels=LABELS,
        frame=FRAME,
        local=FakeListLLM(responses=[" plausible"]),
        hosted=down,
        routing=RouteSettings(hosted_attempts=3, retry_jitter=False),
    ).with_config(configurable={"llm": "hosted"})
    result = chain.invoke(QUERY)
    assert down.calls == 3
    assert (result.route, result.fallback, result.model, result.answer) == (
        "local",
        True,
        "FakeListLLM",
        "plausible",
    )
    assert result.prompt == build_text_prompt(QUERY, DEMOS, FRAME)  # the local route builds its own prompt

    # A client error is not retried (asking again cannot fix it), but still falls back.
    bad = DownChatModel(responses=["unused"], error=ValueError)
    chain = create_amplify_chain(
        FixedSelector(DEMOS),
        labels=LABELS,
        frame=FRAME,
        local=FakeListLLM(responses=[" plausible"]),
        hosted=bad,
        routing=RouteSettings(default_route="hosted", retry_jitter=False),
    )
    assert chain.invoke(QUERY).fallback and bad.calls == 1

    # Without a fallback the error reaches the caller.
    alone = create_amplify_chain(
        FixedSelector(DEMOS),
        labels=LABELS,
        frame=FRAME,
        hosted=DownChatModel(responses=["x"]),
        routing=RouteSettings(hosted_attempts=1),
    )
    with pytest.raises(ConnectionError):
        alone.invoke(QUERY)


def test_batch_async_stream_and_callbacks() -> None:
    chain = create_amplify_chain(
        FixedSelector(DEMOS), labels=LABELS, frame=FRAME, local=FakeListLLM(responses=[" plausible"])
    )
    one = chain.invoke(QUERY)
    assert chain.batch([QUERY, QUERY]) == [one, one]
    assert asyncio.run(chain.ainvoke(QUERY)) == one
    assert asyncio.run(chain.abatch([QUERY])) == [one]
    chunks = list(chain.stream(QUERY))
    assert chunks == [one]  # the final result, as one chunk
    counter = Counter()
    chain.invoke(QUERY, config={"callbacks": [counter]})
    assert counter.llms == 1 and counter.chains >= 5


def test_rag_prompt_holds_context_and_demos() -> None:
    docs = [Document("LeBron James is a basketball player."), Document("Dunks happen in basketball.")]
    retriever = ListRetriever(docs=docs)
    llm = FakeListLLM(responses=[" plausible"])
    rag = create_amplify_rag_chain(retriever, FixedSelector(DEMOS), labels=LABELS, frame=FRAME, local=llm)
    result = rag.invoke(QUERY)
    assert result.context == docs and result.demonstrations == DEMOS
    context = "Context:\n[1] LeBron James is a basketball player.\n[2] Dunks happen in basketball.\n"
    assert context + "Statement: LeBron" in result.prompt
    assert result.prompt.index("Messi hit a home run.") < result.prompt.index("Context:")
    plain = create_plain_rag_chain(retriever, labels=LABELS, frame=FRAME, local=llm).invoke(QUERY)
    assert plain.demonstrations == [] and "Messi" not in plain.prompt and "[2] Dunks" in plain.prompt
    # Chat form: the context goes into the last user turn.
    state = {"input": QUERY, "demonstrations": DEMOS, "context": docs}
    messages = build_prompt(state, "chat", PromptStyle(frame=FRAME)).to_messages()
    assert messages[-1].content.startswith("Context:\n[1] LeBron") and messages[-1].content.endswith(QUERY)


def test_chatbot_keeps_history_and_selects_per_turn() -> None:
    selector = FixedSelector(DEMOS)
    llm = FakeListLLM(responses=[" plausible\nStatement: x", " implausible"])
    bot = create_amplify_chatbot(llm, selector, frame=FRAME, labels=LABELS)
    cfg = {"configurable": {"thread_id": "s1"}}
    first = bot.invoke({"input": QUERY}, cfg)
    second = bot.invoke({"input": "Messi dunked."}, cfg)
    assert selector.queries == [QUERY, "Messi dunked."]
    assert (first["output"], first["answer"], second["answer"]) == ("plausible", "plausible", "implausible")
    assert set(first) == {"output", "answer", "rationale", "demonstrations", "model", "route", "prompt"}
    assert first["demonstrations"] == DEMOS
    # The first turn is in the second prompt, after the demonstrations and before the new message.
    assert (
        "Statement: LeBron James dunked the ball.\nAnswer: plausible\n\nStatement: Messi dunked.\nAnswer:"
        in second["prompt"]
    )
    assert [m.content for m in bot.get_state(cfg).values["messages"]] == [
        QUERY,
        "plausible",
        "Messi dunked.",
        "implausible",
    ]
    other = bot.invoke({"input": "Messi dunked."}, {"configurable": {"thread_id": "s2"}})
    assert "LeBron" not in other["prompt"].split("Messi hit a home run.")[-1]
    with pytest.raises(ValueError, match="needs a message"):
        bot.invoke({"input": "  "}, cfg)

    # Chat models get the history as messages.
    chat_bot = create_amplify_chatbot(
        FakeListChatModel(responses=["Sure. The answer is plausible"]), selector, frame=FRAME
    )
    chat_bot.invoke({"input": "one"}, cfg)
    out = asyncio.run(chat_bot.ainvoke({"input": "two"}, cfg))
    assert out["route"] == "hosted" and out["answer"] == "plausible"  # no labels: the text after the cue
    assert out["prompt"].endswith("Human: one\nAI: Sure. The answer is plausible\nHuman: two")


def test_chatbot_prompt_keeps_the_last_messages_from_a_user_turn() -> None:
    llm = FakeListLLM(responses=[" plausible"])
    bot = create_amplify_chatbot(llm, None, frame=FRAME, labels=LABELS, max_history_messages=3)
    cfg = {"configurable": {"thread_id": "t"}}
    for text in ("one", "two", "three"):
        last = bot.invoke({"input": text}, cfg)
    # Three messages back is an assistant turn: the prompt starts at the next user turn.
    assert "Statement: two\nAnswer: plausible\n\nStatement: three" in last["prompt"]
    assert "one" not in last["prompt"]
    silent = create_amplify_chatbot(llm, None, frame=FRAME, max_history_messages=0)
    silent.invoke({"input": "one"}, cfg)
    assert "one" not in silent.invoke({"input": "two"}, cfg)["prompt"]


def test_history_messages_render_in_chat_prompt() -> None:
    state = {"input": "q2", "demonstrations": DEMOS[:1], "history": [HumanMessage("q1"), AIMessage("a1")]}
    messages = build_prompt(state, "chat", PromptStyle(frame=FRAME)).to_messages()
    assert isinstance(messages[0], SystemMessage)
    assert [m.content for m in messages[-3:]] == ["q1", "a1", "q2"]


def test_frame_is_given_once_and_the_style_takes_the_selectors_keys() -> None:
    from amplify_agents.chains.amplify import chain_style
    from amplify_agents.demonstrations import DemoKeys

    style = PromptStyle(frame=FRAME, answer_prefix="So: ")
    assert chain_style(None, FRAME, style) is style  # the same frame twice is fine
    with pytest.raises(ValueError, match="frame once"):
        create_amplify_chain(FixedSelector(DEMOS), frame=Frame(), style=style, local=FakeListLLM(responses=["x"]))
    selector = FixedSelector(DEMOS)
    selector.keys = DemoKeys(input="q", rationale="why", answer="a")  # type: ignore[attr-defined]
    assert chain_style(selector, FRAME).keys == selector.keys
    assert chain_style(selector, style=style).keys == selector.keys
    own = DemoKeys(input="x", rationale="r", answer="y")
    assert chain_style(selector, style=PromptStyle(FRAME, keys=own)).keys == own
