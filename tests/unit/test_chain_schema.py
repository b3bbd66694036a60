"""The chain's schemas and composition, and label probabilities read off a hosted reply's top log-probabilities.

No model: LangChain's fake LLMs, and two small fake models that return what ``OpenAI(logprobs=K)``
and ``ChatOpenAI(logprobs=True)`` return (``generation_info["logprobs"]`` in the completions
format, ``response_metadata["logprobs"]["content"]``). The real server is in
tests/integration/test_hosted_label_probs.py.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.llms import BaseLLM
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult, Generation, LLMResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool
from langgraph.graph.message import add_messages

from amplify_agents.chains import AmplifyResult, create_amplify_chain, create_amplify_rag_chain, create_plain_rag_chain
from amplify_agents.chains.amplify import chain_input_schema
from amplify_agents.framing import Frame

LABELS = ["plausible", "implausible"]
FRAME = Frame(instruction="Plausible or implausible?", input_prefix="\nStatement: ", output_prefix="\nAnswer:")
QUERY = "LeBron James dunked the ball."


class TopLogprobsLLM(BaseLLM):
    """Answers with fixed text and completions-format top log-probabilities (as ``OpenAI(logprobs=K)``)."""

    text: str
    tokens: list[tuple[str, float, dict[str, float]]]

    @property
    def _llm_type(self) -> str:
        return "top-logprobs-fake"

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        logprobs = {
            "tokens": [t for t, _, _ in self.tokens],
            "token_logprobs": [lp for _, lp, _ in self.tokens],
            "top_logprobs": [top for _, _, top in self.tokens],
            "text_offset": list(range(len(self.tokens))),
        }
        info = {"finish_reason": "stop", "logprobs": logprobs}
        return LLMResult(generations=[[Generation(text=self.text, generation_info=info)] for _ in prompts])


class TopLogprobsChat(BaseChatModel):
    """Replies with fixed text and chat-format top log-probabilities (as ``ChatOpenAI(logprobs=True)``)."""

    tokens: list[tuple[str, float, dict[str, float]]]

    @property
    def _llm_type(self) -> str:
        return "top-logprobs-chat-fake"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        content = [
            {"token": t, "logprob": lp, "top_logprobs": [{"token": k, "logprob": v} for k, v in top.items()]}
            for t, lp, top in self.tokens
        ]
        reply = AIMessage("".join(t for t, _, _ in self.tokens), response_metadata={"logprobs": {"content": content}})
        return ChatResult(generations=[ChatGeneration(message=reply)])


class OneDemo(BaseExampleSelector):
    def add_example(self, example: dict[str, str]) -> Any:
        raise NotImplementedError

    def select_examples(self, input_variables: dict[str, str]) -> list[dict[str, Any]]:
        return [{"input": "Messi scored a goal.", "rationale": "Messi plays football.", "answer": "plausible"}]


class Docs(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content="LeBron James plays basketball.")]


def fixed(text: str) -> FakeListLLM:
    return FakeListLLM(responses=[text] * 8)


# ------------------------------------------------------------------ schemas and tools
@pytest.mark.parametrize("input_key", ["input", "question"])
def test_input_schema_names_the_query_field(input_key: str) -> None:
    chain = create_amplify_chain(None, labels=LABELS, frame=FRAME, local=fixed(" plausible"), input_key=input_key)
    schema = chain.get_input_jsonschema()
    assert schema["type"] == "object" and schema["required"] == [input_key]
    assert schema["properties"][input_key]["type"] == "string"
    assert "labels" in schema["properties"] and "labels" not in schema["required"]
    output = chain.get_output_jsonschema()
    assert {"answer", "label_probs", "outside_top_k", "rationale", "demonstrations", "route"} <= set(
        output["properties"]
    )
    assert chain.invoke({input_key: QUERY}).answer == "plausible"


def test_input_key_must_name_a_field() -> None:
    with pytest.raises(ValueError, match="input_key 'my query' cannot name the query field"):
        chain_input_schema("my query")
    with pytest.raises(ValueError, match="not 'labels'"):
        create_amplify_chain(None, labels=LABELS, local=fixed(" plausible"), input_key="labels")


def test_as_tool_needs_no_arg_types() -> None:
    chain = create_amplify_chain(None, labels=LABELS, frame=FRAME, local=fixed(" implausible"), input_key="statement")
    tool = chain.as_tool(description="Judge whether a sports statement is plausible.")
    assert isinstance(tool, BaseTool) and tool.name == "AmplifyChain"
    assert set(tool.args) == {"statement", "labels"}
    result = tool.invoke({"statement": QUERY})
    assert isinstance(result, AmplifyResult) and result.answer == "implausible" and QUERY in result.prompt
    # Called by an agent (a tool call): the ToolMessage carries the answer text.
    message = tool.invoke({"type": "tool_call", "name": tool.name, "args": {"statement": QUERY}, "id": "call-1"})
    assert (message.type, message.content, message.tool_call_id) == ("tool", "implausible", "call-1")


def test_rag_chains_have_the_same_schemas() -> None:
    amplify = create_amplify_rag_chain(Docs(), OneDemo(), labels=LABELS, frame=FRAME, local=fixed(" plausible"))
    plain = create_plain_rag_chain(Docs(), labels=LABELS, frame=FRAME, local=fixed(" plausible"))
    for chain in (amplify, plain):
        assert chain.get_input_jsonschema()["required"] == ["input"]
        assert "context" in chain.get_output_jsonschema()["properties"]
        assert chain.as_tool(description="RAG").name == "AmplifyRAGChain"
        assert (chain | StrOutputParser()).invoke(QUERY) == "plausible"
        assert chain.invoke(QUERY).context[0].page_content == "LeBron James plays basketball."


# ------------------------------------------------------------------ composition
def test_str_output_parser_gives_the_answer_text() -> None:
    chain = create_amplify_chain(None, labels=LABELS, frame=FRAME, local=fixed(" implausible\nStatement: x"))
    text = chain | StrOutputParser()
    assert text.invoke(QUERY) == "implausible"
    assert list(text.stream(QUERY)) == ["implausible"]
    assert asyncio.run(text.ainvoke({"input": QUERY})) == "implausible"
    assert text.batch([QUERY, QUERY]) == ["implausible", "implausible"]
    # The chain alone still gives every field.
    result = chain.invoke(QUERY)
    assert isinstance(result, AIMessage) and result.content == result.text == str(result) == "implausible"
    assert (result.answer, result.raw_text, result.route) == ("implausible", " implausible\nStatement: x", "local")


def test_answer_text_without_a_label_or_a_label_space() -> None:
    unparsed = create_amplify_chain(None, labels=LABELS, frame=FRAME, local=fixed(" maybe"))
    assert (unparsed | StrOutputParser()).invoke(QUERY) == ""  # no label read: no answer text
    assert unparsed.invoke(QUERY).raw_text == " maybe"
    free = create_amplify_chain(None, frame=FRAME, local=fixed(" blue sky.\nStatement"))
    assert (free | StrOutputParser()).invoke("Colour?") == "blue sky"  # no label space: the generated answer


def test_a_result_is_a_message_langgraph_can_keep() -> None:
    result = create_amplify_chain(None, labels=LABELS, frame=FRAME, local=fixed(" plausible")).invoke(QUERY)
    [human, ai] = add_messages([HumanMessage(QUERY)], [result])  # LangGraph's reducer sets the id in place
    assert ai is result and ai.id and ai.label_probs is None and ai.answer == "plausible"
    with pytest.raises(ValueError, match="Extra inputs"):
        AmplifyResult(answer="x", raw_text="x", model="m", route="local", prompt="p", labelprobs={})


# ------------------------------------------------------------------ hosted label probabilities
def test_label_probs_from_a_completions_models_top_logprobs() -> None:
    tokens = [(" impl", -0.3, {" impl": -0.3, " plausible": -1.5, "\n": -3.0}), ("ausible", -0.01, {"ausible": -0.01})]
    llm = TopLogprobsLLM(text=" implausible", tokens=tokens)
    result = create_amplify_chain(None, labels=LABELS, frame=FRAME, hosted=llm).invoke(QUERY)
    assert result.route == "hosted" and result.outside_top_k == []
    # "implausible" along the generated path (" impl" + "ausible"), "plausible" as the first alternative.
    p = math.exp(-0.31) / (math.exp(-0.31) + math.exp(-1.5))
    assert result.label_probs == pytest.approx({"implausible": p, "plausible": 1 - p}, abs=1e-9)
    assert result.answer == "implausible"
    # A reply that stops inside a label (max_tokens too small) leaves that label unread: reported.
    cut = TopLogprobsLLM(text=" impl", tokens=tokens[:1])
    short = create_amplify_chain(None, labels=LABELS, frame=FRAME, hosted=cut).invoke(QUERY)
    assert short.outside_top_k == ["implausible"] and short.label_probs is not None


def test_a_label_outside_the_top_k_is_reported() -> None:
    llm = TopLogprobsLLM(text=" plausible", tokens=[(" plausible", -0.2, {" plausible": -0.2, "\n": -2.5})])
    result = create_amplify_chain(None, labels=LABELS, frame=FRAME, hosted=llm).invoke(QUERY)
    assert result.outside_top_k == ["implausible"]  # its probability is an upper bound
    assert result.label_probs is not None and result.answer == "plausible"
    assert result.label_probs["implausible"] < result.label_probs["plausible"]


def test_labels_given_with_the_input_are_read_too() -> None:
    llm = TopLogprobsLLM(text=" (B)", tokens=[(" (B", -0.1, {" (B": -0.1, " (A": -2.4})])
    result = create_amplify_chain(None, frame=FRAME, hosted=llm).invoke({"input": QUERY, "labels": ["(A)", "(B)"]})
    assert result.answer == "(B)" and set(result.label_probs or {}) == {"(A)", "(B)"}


def test_every_label_outside_the_top_k_gives_no_distribution() -> None:
    llm = TopLogprobsLLM(text=" maybe", tokens=[(" maybe", -0.2, {" maybe": -0.2, " perhaps": -1.9})])
    result = create_amplify_chain(None, labels=LABELS, frame=FRAME, hosted=llm).invoke(QUERY)
    # The bounds say nothing: no guess, the reply's text decides (and names no label).
    assert result.label_probs is None and result.answer is None
    assert set(result.outside_top_k) == set(LABELS) and result.raw_text == " maybe"


def test_label_probs_from_a_chat_models_top_logprobs_after_the_answer_cue() -> None:
    tokens = [
        ("Dunks are basketball.", -0.1, {}),
        (" The answer is", -0.05, {}),
        (" plausible", -0.4, {" plausible": -0.4, " impl": -1.2, " not": -3.0}),
    ]
    result = create_amplify_chain(None, labels=LABELS, frame=FRAME, hosted=TopLogprobsChat(tokens=tokens)).invoke(QUERY)
    assert result.label_probs == pytest.approx({"plausible": 0.6900, "implausible": 0.3100}, abs=1e-4)
    assert (result.answer, result.rationale, result.outside_top_k) == ("plausible", "Dunks are basketball.", [])
    chain = create_amplify_chain(None, labels=LABELS, frame=FRAME, hosted=TopLogprobsChat(tokens=tokens))
    assert (chain | StrOutputParser()).invoke(QUERY) == "plausible"
