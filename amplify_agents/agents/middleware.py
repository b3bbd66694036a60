"""``AmplifyMiddleware``: rationale-annotated demonstrations in every model call of a LangChain agent.

For ``langchain.agents.create_agent``. Before each model call the middleware takes the text of
the latest user message, retrieves demonstrations for it with an example selector (an
:class:`~amplify_agents.selectors.AmplifyExampleSelector` brings its filters, label balance and
token budget) and puts them into the model *request*:

* ``placement="system_prompt"`` (default): appended to the agent's system prompt as text
  demonstrations (input, rationale, answer), laid out by the prompt's :class:`Frame`
  (:meth:`Frame.demo <amplify_agents.framing.Frame.demo>`, as in the text prompts);
* ``placement="messages"``: few-shot user/assistant pairs before the conversation
  (:func:`~amplify_agents.prompts.build_chat_messages`, Self-AMPLIFY's chat form).

Only the request changes: the agent's state (its ``messages``, checkpointed or not) never holds
the demonstrations, so the agent loop's later model calls of the same turn (after a tool call)
get them once each, not once more per call. They are retrieved once per user message and
remembered for the turn (a small LRU keyed by the message id).

With ``feedback=`` (a :class:`~amplify_agents.feedback.FeedbackLog`) the agent's final answer to
the latest user message is recorded after the run as *unverified* feedback: it goes to the review
queue with the ids of the demonstrations that were shown, never into the store.

Example:
    .. code-block:: python

        from langchain.agents import create_agent

        agent = create_agent(
            model,
            tools=[lookup_player],
            system_prompt="You judge whether sports sentences are plausible.",
            middleware=[AmplifyMiddleware(AmplifyExampleSelector(store, k=4))],
        )
        agent.invoke({"messages": [{"role": "user", "content": "Messi threw a touchdown."}]})
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from amplify_agents.chains.amplify import chain_style
from amplify_agents.errors import InputTooLongError
from amplify_agents.feedback import FeedbackLog
from amplify_agents.limits import DEFAULT_LIMITS, TextLimits
from amplify_agents.prompts import PromptStyle, build_chat_messages

__all__ = ["AmplifyMiddleware", "AmplifyMiddlewareSettings", "Placement"]

Placement = Literal["system_prompt", "messages"]
"""Where the demonstrations go: the system prompt (text) or few-shot messages before the conversation."""

_PLACEMENTS: tuple[str, ...] = ("system_prompt", "messages")
_HEADERS = {  # keyed by PromptStyle.rationale_first
    True: "Solved examples, each with its reasoning before the answer:",
    False: "Solved examples, each answer followed by its reasoning:",
}


@dataclass(frozen=True)
class AmplifyMiddlewareSettings:
    """How :class:`AmplifyMiddleware` puts demonstrations into a model request.

    Attributes:
        placement: ``"system_prompt"``: text demonstrations appended to the system prompt (one
            is created when the agent has none); ``"messages"``: user/assistant pairs before
            the conversation.
        header: the line before the demonstrations in the system prompt; default: one that says
            where each demonstration's reasoning is (before or after its answer, as ``style``).
        style: the layout (frame, demo keys, (x, r, y) or (x, y, r), the assistant turns'
            ``answer_prefix``); default: the selector's frame and keys. The frame's instruction
            is not used: the agent's own system prompt is the instruction.
        cache_size: how many user messages' demonstrations are remembered (each is retrieved
            once, however many model calls its turn takes).
        limits: the longest user message retrieved for (``max_input_chars``); a longer one
            raises :class:`~amplify_agents.errors.InputTooLongError`.
    """

    placement: Placement = "system_prompt"
    header: str | None = None
    style: PromptStyle | None = None
    cache_size: int = 64
    limits: TextLimits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if self.placement not in _PLACEMENTS:
            raise ValueError(f"Unknown placement {self.placement!r}: use 'system_prompt' or 'messages'.")
        if self.cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {self.cache_size}.")


class AmplifyMiddleware(AgentMiddleware):
    """Agent middleware that puts AMPLIFY demonstrations, retrieved for the latest user message,
    into each model request (see the module docs).

    Args:
        selector: retrieves the demonstrations (``select_examples`` / ``aselect_examples``),
            e.g. an :class:`~amplify_agents.selectors.AmplifyExampleSelector`; its filters, label
            balance and token budget decide what is shown.
        settings: placement, header, layout, cache (:class:`AmplifyMiddlewareSettings`).
        feedback: when given, the agent's final answer to each user message is recorded into
            this log's review queue, unverified, with the ids of the demonstrations shown.

    Works with any chat model the agent uses, in ``invoke`` and ``ainvoke`` / ``astream``.
    """

    def __init__(
        self,
        selector: BaseExampleSelector,
        settings: AmplifyMiddlewareSettings = AmplifyMiddlewareSettings(),
        *,
        feedback: FeedbackLog | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(selector, BaseExampleSelector):
            raise TypeError(
                f"AmplifyMiddleware needs an example selector (e.g. AmplifyExampleSelector), "
                f"got {type(selector).__name__}."
            )
        self.selector = selector
        self.settings = settings
        self.feedback = feedback
        frame = None if settings.style is not None else getattr(selector, "frame", None)
        self.style: PromptStyle = chain_style(selector, frame, settings.style)
        self.header = settings.header or _HEADERS[self.style.rationale_first]
        self._input_key = str(getattr(selector, "input_key", "input"))
        self._seen: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the model call
    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> Any:
        """Add the demonstrations for the latest user message to the request, then call the model."""
        turn = _latest_user_message(request.messages)
        if turn is None:
            return handler(request)
        demos = self._remembered(turn)
        if demos is None:
            demos = self._remember(turn, self.selector.select_examples(self._variables(turn)))
        return handler(self.with_demonstrations(request, demos))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> Any:
        """The async :meth:`wrap_model_call`: retrieves with the selector's ``aselect_examples``."""
        turn = _latest_user_message(request.messages)
        if turn is None:
            return await handler(request)
        demos = self._remembered(turn)
        if demos is None:
            demos = self._remember(turn, await self.selector.aselect_examples(self._variables(turn)))
        return await handler(self.with_demonstrations(request, demos))

    def with_demonstrations(self, request: ModelRequest, demos: Sequence[dict[str, Any]]) -> ModelRequest:
        """A copy of ``request`` holding ``demos`` where the settings place them (``request`` unchanged)."""
        if not demos:
            return request
        if self.settings.placement == "messages":
            pairs: list[Any] = build_chat_messages(
                "",
                demos,
                replace(self.style.frame, instruction=""),
                keys=self.style.keys,
                answer_prefix=self.style.answer_prefix,
                rationale_first=self.style.rationale_first,
            )[:-1]  # the last one is the (empty) query turn: the conversation follows instead
            return request.override(messages=[*pairs, *request.messages])
        block = self.demonstration_text(demos)
        return request.override(system_message=_extended(request.system_message, block))

    def demonstration_text(self, demos: Sequence[dict[str, Any]]) -> str:
        """The demonstrations as the system prompt shows them: the header, then each in the style's
        layout ((x, r, y), or (x, y, r) with ``style.rationale_first=False``)."""
        frame, keys = self.style.frame, self.style.keys
        # Frame.demo is the text prompts' own layout of one demonstration (cue lines folded).
        body = "".join(
            frame.demo(
                str(d[keys.input]),
                str(d[keys.answer]),
                str(d.get(keys.rationale) or ""),
                rationale_first=self.style.rationale_first,
            )
            + "\n"
            for d in demos
        )
        return f"{self.header}\n{body}".strip()

    # ----------------------------------------------------------------------- feedback
    def after_agent(self, state: AgentState, runtime: Runtime) -> dict[str, Any] | None:
        """Record the final answer to the latest user message as unverified feedback (with ``feedback=``)."""
        if self.feedback is None:
            return None
        messages: list[AnyMessage] = list(state.get("messages") or [])
        turn = _latest_user_message(messages)
        final = messages[-1] if messages else None
        if turn is None or not isinstance(final, AIMessage) or final.tool_calls or not final.text.strip():
            return None
        demos = self._remembered(turn) or []
        ids = [str(d["demo_id"]) for d in demos if d.get("demo_id")]
        try:
            self.feedback.record(turn.text, final.text, verified=False, demo_ids=ids)
        except InputTooLongError as exc:  # the user has the answer already: do not fail the run
            warnings.warn(f"AmplifyMiddleware: the answer was not recorded as feedback: {exc}", stacklevel=2)
        return None

    # ------------------------------------------------------------------------ helpers
    def _variables(self, turn: HumanMessage) -> dict[str, Any]:
        text = self.settings.limits.check("input", turn.text, where="AmplifyMiddleware: the latest user message")
        return {self._input_key: text}

    def _remembered(self, turn: HumanMessage) -> list[dict[str, Any]] | None:
        with self._lock:
            demos = self._seen.get(_turn_key(turn))
            if demos is not None:
                self._seen.move_to_end(_turn_key(turn))
            return demos

    def _remember(self, turn: HumanMessage, demos: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [dict(d) for d in demos]
        with self._lock:
            self._seen[_turn_key(turn)] = kept
            while len(self._seen) > self.settings.cache_size:
                self._seen.popitem(last=False)
        return kept


def _latest_user_message(messages: Sequence[BaseMessage]) -> HumanMessage | None:
    for message in reversed(messages):
        if isinstance(message, HumanMessage) and message.text.strip():
            return message
    return None


def _turn_key(message: HumanMessage) -> str:
    # The agent's state gives every message an id; a message without one is known by its text.
    return f"id:{message.id}" if message.id else f"text:{message.text}"


def _extended(system: SystemMessage | None, block: str) -> SystemMessage:
    """``system`` with ``block`` appended (a new system message when there is none)."""
    if system is None:
        return SystemMessage(block)
    if isinstance(system.content, str):
        return SystemMessage(f"{system.content}\n\n{block}" if system.content.strip() else block)
    # Content blocks (e.g. with cache-control marks) are kept as they are; the demos come last.
    return SystemMessage([*system.content, {"type": "text", "text": f"\n\n{block}"}])
