"""What an AMPLIFY chain returns: an ``AIMessage`` whose content is the answer text, with the rest attached."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import AIMessage
from pydantic import ConfigDict, Field

__all__ = ["AmplifyResult"]


class AmplifyResult(AIMessage):
    """The answer of an AMPLIFY chain and how it was reached.

    It is an ``AIMessage`` (``content``: the answer text), so it composes like a chat model's
    reply: ``chain | StrOutputParser()`` gives the answer text, and it can go into a message
    history; the fields below stay on it for whoever invokes the chain alone.

    The answer text (``content``, ``text``, ``str(result)``, what ``StrOutputParser`` returns) is
    :attr:`answer`: the label when the chain has a label space (``""`` when none could be read off
    the model's reply), else the generated answer.

    Attributes:
        answer: the label the model answered (a member of the label space), or ``None``
            when its text could not be parsed. Without a label space: the answer text.
        raw_text: what the model produced (for label scoring: the winning label).
        rationale: the text the model wrote before its answer ("" when none).
        demonstrations: the demonstrations put in the prompt, as the selector returned them
            (``input``, ``rationale``, ``answer`` and, from a rationale store, ``demo_id``).
        label_probs: a distribution over the labels, when the route gives one: local label
            scoring, a completions :class:`~amplify_agents.answering.Endpoint`, or a hosted model
            that returns top log-probabilities (``ChatOpenAI``, ``OpenAI``); else ``None``, also
            when every label was outside the returned top-k (the reply's text decided).
        outside_top_k: labels whose probability in ``label_probs`` is only an upper bound: the
            server's top-k alternatives did not hold them (hosted routes; empty otherwise).
        model: the model that answered: the one the route declares, or the name a hosted
            endpoint reported.
        route: which route answered, ``"local"`` or ``"hosted"``.
        fallback: ``True`` when another route was asked for and this one answered instead
            (the hosted model failed and the local model stood in).
        prompt: the prompt sent; a chat prompt is rendered as a ``Role: text`` transcript.
        context: the retrieved documents (RAG chains only).
    """

    # A message, so not frozen: LangChain and LangGraph set message ids in place (add_messages).
    model_config = ConfigDict(extra="forbid")

    answer: str | None
    raw_text: str
    rationale: str = ""
    demonstrations: list[dict[str, Any]] = Field(default_factory=list)
    label_probs: dict[str, float] | None = None
    outside_top_k: list[str] = Field(default_factory=list)
    model: str
    route: str
    fallback: bool = False
    prompt: str
    context: list[Document] = Field(default_factory=list)

    def __init__(self, content: str | list[str | dict[Any, Any]] | None = None, **kwargs: Any) -> None:
        """Build a result from its fields; ``content`` defaults to the answer text."""
        super().__init__(content=(kwargs.get("answer") or "") if content is None else content, **kwargs)

    def __str__(self) -> str:
        """The answer text (what a tool built with ``chain.as_tool()`` tells the agent)."""
        return str(self.text)

    @property
    def demo_ids(self) -> list[str]:
        """The store ids of the demonstrations used (those that have one)."""
        return [str(d["demo_id"]) for d in self.demonstrations if d.get("demo_id")]
