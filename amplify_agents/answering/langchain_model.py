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
from langchain_core.runnables import Runnable

from amplify_agents.answering.backends import AnswerBackend, Prompt, PromptForm, Reply, ReplySettings
from amplify_agents.answering.toplogprobs import TokenChoice, label_scores_from_tokens, token_choices
from amplify_agents.models.generation import cut_at_stops

__all__ = ["LangChainBackend", "model_name_of"]


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
        replies = []
        for out, labs in zip(self._invoke(prompts, how.max_new_tokens, how.stop), label_lists, strict=True):
            text = cut_at_stops(_text_of(out), how.stop)
            tokens = _tokens_of(out)
            if tokens:
                scores, outside = label_scores_from_tokens(tokens, labs, how.answer_prefix)
                replies.append(Reply(scores, text, outside))
            else:
                replies.append(Reply(None, text))
        return replies

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        return [cut_at_stops(_text_of(out), stop) for out in self._invoke(prompts, max_new_tokens, stop)]


def _text_of(out: Any) -> str:
    if isinstance(out, BaseMessage):
        return out.text if isinstance(out.text, str) else str(out.content)
    return str(out)


def _tokens_of(out: Any) -> list[TokenChoice]:
    if not isinstance(out, BaseMessage):
        return []
    return token_choices((out.response_metadata.get("logprobs") or {}).get("content") or [])
