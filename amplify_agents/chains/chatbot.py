"""A LangGraph chatbot whose every user turn gets AMPLIFY demonstrations retrieved for that turn.

:func:`create_amplify_chatbot` compiles a one-node LangGraph ``StateGraph``. The conversation
(``messages``) lives in a LangGraph checkpointer, one thread per ``thread_id``: an
``InMemorySaver`` by default, a ``SqliteSaver`` (:func:`sqlite_checkpointer`) to keep it across
restarts, or any other saver. For each new message the selector retrieves demonstrations for
*that message*, and the prompt is: instruction, those demonstrations, the recent history, the
message. A chat model gets the chat form (history as messages); a base model the text form
(past turns rendered like answered questions).

The graph::

    START -> amplify_turn -> END
             (history from the checkpoint -> select demos -> prompt -> model -> reply)

Invoke it with ``{"input": message}`` and ``config={"configurable": {"thread_id": "..."}}``; the
conversation so far is ``bot.get_state(config).values["messages"]``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, trim_messages
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from langchain_huggingface import HuggingFacePipeline
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph

from amplify_agents.chains.amplify import _form_of, _front, _model_route, _stops_for, chain_style, local_llm
from amplify_agents.chains.result import AmplifyResult
from amplify_agents.chains.routing import HOSTED, LOCAL
from amplify_agents.framing import Frame
from amplify_agents.limits import DEFAULT_LIMITS, TextLimits
from amplify_agents.models.generation import cut_at_stops
from amplify_agents.models.loading import LoadedModel
from amplify_agents.prompts import PromptStyle

__all__ = ["ChatReply", "ChatState", "ChatTurn", "create_amplify_chatbot", "sqlite_checkpointer"]


class ChatTurn(TypedDict):
    """The chatbot's input: one user message."""

    input: str


class ChatReply(TypedDict):
    """The chatbot's output for one turn.

    Attributes:
        output: the reply text (what the conversation keeps as the assistant's message).
        answer: the reply parsed onto the label space (``None`` when it could not be).
        rationale: the text the model wrote before its answer.
        demonstrations: the demonstrations retrieved for this message.
        model / route: which model answered, on which route (``"local"`` or ``"hosted"``).
        prompt: the prompt sent (a chat prompt as a ``Role: text`` transcript).
    """

    output: str
    answer: str | None
    rationale: str
    demonstrations: list[dict[str, Any]]
    model: str
    route: str
    prompt: str


class ChatState(ChatTurn, ChatReply):
    """The graph's state: the conversation (checkpointed per thread) and the latest turn."""

    messages: Annotated[list[AnyMessage], add_messages]


def sqlite_checkpointer(path: str | os.PathLike[str]) -> SqliteSaver:
    """A LangGraph ``SqliteSaver`` on the database file ``path`` (created with its folder).

    Conversations written through it survive a restart: another process opening the same file
    sees every thread. The connection stays open for the life of the saver and may be used from
    several threads (the saver serialises its writes). It serves ``invoke``/``stream``; for
    ``ainvoke`` use ``langgraph.checkpoint.sqlite.aio.AsyncSqliteSaver``.
    """
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(file), check_same_thread=False))


def _reply(result: AmplifyResult, stops: Sequence[str]) -> dict[str, Any]:
    # The conversation keeps what the model said, without the next question it began to write.
    text = cut_at_stops(result.raw_text, stops).strip()
    return {
        "output": text,
        "answer": result.answer,
        "rationale": result.rationale,
        "demonstrations": result.demonstrations,
        "model": result.model,
        "route": result.route,
        "prompt": result.prompt,
    }


def _recent(messages: Sequence[BaseMessage], keep: int) -> list[BaseMessage]:
    """The last ``keep`` messages of the conversation, starting on a user turn."""
    if keep <= 0 or not messages:
        return []
    return trim_messages(messages, max_tokens=keep, token_counter=len, strategy="last", start_on="human")


def create_amplify_chatbot(
    llm: LoadedModel | BaseLanguageModel,
    selector: BaseExampleSelector | None,
    *,
    labels: Sequence[str] | None = None,
    frame: Frame | None = None,
    style: PromptStyle | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    max_history_messages: int = 6,
    max_new_tokens: int = 48,
    limits: TextLimits = DEFAULT_LIMITS,
) -> CompiledStateGraph:
    """Build a LangGraph chatbot with per-turn AMPLIFY demonstrations and per-thread memory.

    Args:
        llm: the model: a :class:`LoadedModel` (generates greedily through
            ``HuggingFacePipeline``, text form), or a LangChain chat model / LLM (e.g.
            ``ChatOpenAI``).
        selector: retrieves demonstrations for each user message (``None``: no demos).
        labels: when given, each reply is also parsed onto this label space (``"answer"``).
        frame / style: the prompt layout, as in :func:`~amplify_agents.chains.create_amplify_chain`
            (the frame: instruction and turn layout of the text form, the chat form's system text).
        checkpointer: where conversations are kept, one per ``thread_id`` (default: a new
            ``InMemorySaver``; :func:`sqlite_checkpointer` keeps them across restarts).
        max_history_messages: only the last N messages of the conversation go into the prompt.
        max_new_tokens: reply length of a :class:`LoadedModel`.
        limits: the longest user message accepted (``max_input_chars``).

    Returns:
        A compiled LangGraph graph. Invoke it with ``{"input": message}`` and
        ``config={"configurable": {"thread_id": "..."}}``; it returns a :class:`ChatReply`
        dict: ``output`` (the reply text, kept in the conversation), ``answer``, ``rationale``,
        ``demonstrations`` (retrieved for this message), ``model``, ``route`` and ``prompt``.
        ``bot.get_state(config).values["messages"]`` is the thread's conversation.

    Example:
        .. code-block:: python

            bot = create_amplify_chatbot(gemma, selector, frame=frame, checkpointer=sqlite_checkpointer("chat.db"))
            cfg = {"configurable": {"thread_id": "alice"}}
            bot.invoke({"input": "Is it plausible that Tom Brady threw a touchdown?"}, cfg)
            bot.invoke({"input": "And that he scored a penalty kick?"}, cfg)["output"]
    """
    style = chain_style(selector, frame, style)
    model = local_llm(llm, mode="generate", frame=style.frame, max_new_tokens=max_new_tokens)
    stops = _stops_for(_form_of(model), style)
    # A model in this process (a LoadedModel or a transformers pipeline) is the local route.
    name = LOCAL if isinstance(llm, LoadedModel) or isinstance(model, HuggingFacePipeline) else HOSTED
    answer = _front(selector, input_key="input", labels=labels) | _model_route(name, model, style, name)

    def prepare(state: ChatState) -> dict[str, Any]:
        if not str(state.get("input") or "").strip():
            raise ValueError('The chatbot needs a message: invoke it with {"input": "..."}.')
        text = limits.check("input", str(state["input"]), where="Chatbot message")
        return {"input": text, "history": _recent(state.get("messages") or [], max_history_messages)}

    def update(turn: dict[str, Any]) -> dict[str, Any]:
        reply = _reply(turn["result"], stops)
        return {"messages": [HumanMessage(turn["input"]), AIMessage(reply["output"])], **reply}

    node: Runnable = (
        RunnableLambda(prepare, name="amplify_history")
        | RunnablePassthrough.assign(result=answer)
        | RunnableLambda(update, name="amplify_reply")
    )
    graph = StateGraph(ChatState, input_schema=ChatTurn, output_schema=ChatReply)
    graph.add_node("amplify_turn", node)
    graph.add_edge(START, "amplify_turn")
    graph.add_edge("amplify_turn", END)
    saver = checkpointer if checkpointer is not None else InMemorySaver()
    return graph.compile(checkpointer=saver, name="AmplifyChatbot")
