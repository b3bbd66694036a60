"""A chatbot whose every user turn gets AMPLIFY demonstrations retrieved for that turn.

:func:`create_amplify_chatbot` wraps an inner chain in LangChain's
``RunnableWithMessageHistory``: the conversation so far is kept per ``session_id`` in an
``InMemoryChatMessageHistory``; for each new message the selector retrieves demonstrations
for *that message*, and the prompt is: instruction, those demonstrations, the recent history,
the message. A chat model gets the chat form (history as messages); a base model the text
form (past turns rendered like answered questions).

Note: langchain-core 1.x marks ``RunnableWithMessageHistory`` and
``InMemoryChatMessageHistory`` deprecated (LangGraph persistence is its recommendation); they
still work and emit a ``LangChainDeprecationWarning``. Pass ``get_session_history=`` to use
another history store.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.language_models import BaseLanguageModel
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_huggingface import HuggingFacePipeline

from amplify_agents.chains.amplify import _form_of, _front, _model_route, _stops_for, chain_style, local_llm
from amplify_agents.chains.result import AmplifyResult
from amplify_agents.chains.routing import HOSTED, LOCAL
from amplify_agents.framing import Frame
from amplify_agents.models.generation import cut_at_stops
from amplify_agents.models.loading import LoadedModel
from amplify_agents.prompts import PromptStyle

__all__ = ["create_amplify_chatbot", "in_memory_histories"]


def in_memory_histories(
    store: MutableMapping[str, BaseChatMessageHistory] | None = None,
) -> Callable[[str], BaseChatMessageHistory]:
    """A ``get_session_history`` function over a dict of ``InMemoryChatMessageHistory``.

    A new session id gets an empty history; pass your own dict to inspect or reset sessions.
    """
    histories: MutableMapping[str, BaseChatMessageHistory] = {} if store is None else store

    def get_session_history(session_id: str) -> BaseChatMessageHistory:
        if session_id not in histories:
            histories[session_id] = InMemoryChatMessageHistory()
        return histories[session_id]

    return get_session_history


def _reply(result: AmplifyResult, stops: Sequence[str]) -> dict[str, Any]:
    # The history keeps what the model said, without the next question it began to write.
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


def create_amplify_chatbot(
    llm: LoadedModel | BaseLanguageModel,
    selector: BaseExampleSelector | None,
    *,
    labels: Sequence[str] | None = None,
    frame: Frame | None = None,
    style: PromptStyle | None = None,
    histories: MutableMapping[str, BaseChatMessageHistory] | None = None,
    get_session_history: Callable[..., BaseChatMessageHistory] | None = None,
    max_history_messages: int = 6,
    max_new_tokens: int = 48,
) -> RunnableWithMessageHistory:
    """Build a chatbot with per-turn AMPLIFY demonstrations and per-session memory.

    Args:
        llm: the model: a :class:`LoadedModel` (generates greedily through
            ``HuggingFacePipeline``, text form), or a LangChain chat model / LLM (e.g.
            ``ChatOpenAI``).
        selector: retrieves demonstrations for each user message (``None``: no demos).
        labels: when given, each reply is also parsed onto this label space (``"answer"``).
        frame / style: the prompt layout, as in :func:`~amplify_agents.chains.create_amplify_chain`
            (the frame: instruction and turn layout of the text form, the chat form's system text).
        histories: the dict session_id -> history to use (a new one by default).
        get_session_history: a custom history factory instead (e.g. a database-backed one).
        max_history_messages: only the last N history messages go into the prompt.
        max_new_tokens: reply length of a :class:`LoadedModel`.

    Returns:
        A ``RunnableWithMessageHistory``. Invoke it with ``{"input": message}`` and
        ``config={"configurable": {"session_id": "..."}}``; it returns a dict with ``output``
        (the reply text, stored in the history), ``answer``, ``rationale``,
        ``demonstrations`` (retrieved for this message), ``model``, ``route`` and ``prompt``.

    Example:
        .. code-block:: python

            bot = create_amplify_chatbot(gemma, selector, frame=frame, max_new_tokens=24)
            cfg = {"configurable": {"session_id": "alice"}}
            bot.invoke({"input": "Is it plausible that Tom Brady threw a touchdown?"}, cfg)
            bot.invoke({"input": "And that he scored a penalty kick?"}, cfg)["output"]
    """
    style = chain_style(selector, frame, style)
    model = local_llm(llm, mode="generate", frame=style.frame, max_new_tokens=max_new_tokens)
    stops = _stops_for(_form_of(model), style)
    # A model in this process (a LoadedModel or a transformers pipeline) is the local route.
    name = LOCAL if isinstance(llm, LoadedModel) or isinstance(model, HuggingFacePipeline) else HOSTED
    keep = max(0, max_history_messages)
    inner = (
        RunnablePassthrough.assign(
            history=RunnableLambda(lambda s: list(s.get("history") or [])[-keep:] if keep else [], name="trim_history")
        )
        | _front(selector, input_key="input", labels=labels)
        | _model_route(name, model, style, name)
        | RunnableLambda(lambda result: _reply(result, stops), name="amplify_reply")
    ).with_config(run_name="AmplifyChatTurn")
    return RunnableWithMessageHistory(
        inner,
        get_session_history or in_memory_histories(histories),
        input_messages_key="input",
        history_messages_key="history",
        output_messages_key="output",
    )
