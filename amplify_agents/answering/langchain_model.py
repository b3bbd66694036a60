"""Any LangChain model object as an answering backend: generation plus the answer parser.

The floor for models that give no log-probabilities. A chat model that returns OpenAI-style
``logprobs`` in its response metadata (``ChatOpenAI(logprobs=True, top_logprobs=20)``) also
gives a label distribution, read as the chat endpoint's is (:mod:`.toplogprobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import Generation
from langchain_core.runnables import Runnable

from amplify_agents.answering.backends import AnswerBackend, Prompt, PromptForm, Reply, ReplySettings
from amplify_agents.answering.toplogprobs import (
    TokenChoice,
    completion_token_choices,
    label_scores_from_tokens,
    token_choices,
)
from amplify_agents.models.generation import cut_at_stops

__all__ = ["LangChainBackend", "langchain_reply", "model_name_of"]


def model_name_of(model: Any) -> str:
    """The model's name as LangChain objects spell it (``model_name``, ``model``, ``model_id``)."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


class LangChainBackend(AnswerBackend):
    """A LangChain LLM or chat model (any provider).

    Args:
        model: the model; chat models get chat prompts, LLMs text prompts.
        max_concurrency: parallel calls in ``batch`` (LangChain's own thread pool).
        runnable: what is actually called (default ``model``); e.g. ``model.with_retry(...)``.
    """

    kind = "langchain"

    def __init__(self, model: BaseLanguageModel, *, max_concurrency: int = 4, runnable: Runnable | None = None) -> None:
        self.model = model
        self.runnable = runnable if runnable is not None else model
        self.form: PromptForm = "chat" if isinstance(model, BaseChatModel) else "text"
        self.model_name = model_name_of(model)
        self.max_concurrency = max_concurrency

    @property
    def can_score(self) -> bool:
        return False  # only when the model happens to return logprobs; calibration cannot rely on it

    def _invoke(self, prompts: Sequence[Prompt], max_new_tokens: int, stop: Sequence[str]) -> list[Any]:
        stops = [s for s in stop if s] or None
        config = {"max_concurrency": self.max_concurrency}
        return self.runnable.batch(list(prompts), config=config, stop=stops)  # type: ignore[arg-type]

    def answer(
        self, prompts: Sequence[Prompt], label_lists: Sequence[Sequence[str]], how: ReplySettings = ReplySettings()
    ) -> list[Reply]:
        outputs = self._invoke(prompts, how.max_new_tokens, how.stop)
        return [
            langchain_reply(out, labs, how.answer_prefix, how.stop)
            for out, labs in zip(outputs, label_lists, strict=True)
        ]

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        return [cut_at_stops(_text_of(out), stop) for out in self._invoke(prompts, max_new_tokens, stop)]


def langchain_reply(out: Any, labels: Sequence[str], answer_prefix: str, stop: Sequence[str] = ()) -> Reply:
    """A LangChain model's output as a :class:`Reply`: its text (cut at ``stop``), and label scores
    read off the top log-probabilities it carries (:mod:`.toplogprobs`), when it carries them.

    ``out`` is a chat model's message (``response_metadata["logprobs"]["content"]``, as
    ``ChatOpenAI(logprobs=True, top_logprobs=K)`` returns it), an LLM's ``Generation``
    (``generation_info["logprobs"]`` in the completions format, as ``OpenAI(logprobs=K)`` returns
    it) or plain text (no scores). Labels outside the returned top-k are in ``outside_top_k``.
    """
    text = cut_at_stops(_text_of(out), stop)
    tokens = _tokens_of(out)
    if not tokens or not labels:
        return Reply(None, text)
    scores, outside = label_scores_from_tokens(tokens, labels, answer_prefix)
    return Reply(scores, text, outside)


def _text_of(out: Any) -> str:
    if isinstance(out, BaseMessage):
        return out.text if isinstance(out.text, str) else str(out.content)
    if isinstance(out, Generation):
        return out.text
    return str(out)


def _tokens_of(out: Any) -> list[TokenChoice]:
    if isinstance(out, BaseMessage):
        return token_choices((out.response_metadata.get("logprobs") or {}).get("content") or [])
    if isinstance(out, Generation):
        return completion_token_choices((out.generation_info or {}).get("logprobs"))
    return []
