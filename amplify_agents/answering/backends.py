"""What answers: the backends behind the one answering path.

Every backend turns prompts into :class:`Reply` objects for given label spaces: label
log-probabilities where the model offers them, else generated text for the answer parser.

=========================== ============ ===================================================
backend                     prompt form  label scores
=========================== ============ ===================================================
:class:`LocalBackend`       text         exact: :class:`~amplify_agents.models.LabelScorer`
                                         (label-position logits, shared-prefix KV cache)
``CompletionsBackend``      text         exact: ``/v1/completions`` with ``echo`` + ``logprobs``
``ChatBackend``             chat         from ``top_logprobs`` at the answer's tokens, when
                                         the server returns them; else generation + parser
``LangChainBackend``        either       generation + parser (from ``logprobs`` metadata
                                         when a chat model returns it)
=========================== ============ ===================================================
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import BaseMessage

from amplify_agents.models.generation import GenerationSettings, generate_text
from amplify_agents.models.loading import LoadedModel
from amplify_agents.models.locks import model_lock
from amplify_agents.models.scoring import LabelScorer, LabelScores

__all__ = ["AnswerBackend", "LocalBackend", "Prompt", "PromptForm", "Reply", "ReplySettings", "ScoringUnavailable"]

PromptForm = Literal["text", "chat"]
Prompt = str | list[BaseMessage]
"""A text prompt (completion models) or a list of chat messages (chat models)."""


class ScoringUnavailable(RuntimeError):
    """The backend cannot give label scores (no log-probabilities): answer by generation instead."""


@dataclass(frozen=True)
class ReplySettings:
    """How a backend reads one call's answers.

    Attributes:
        label_prefix: text between a text prompt and each label (the frame's, " " by default).
        answer_prefix: the cue after which a generated reply states its label ("The answer is ").
        max_new_tokens: the reply's length when the answer is generated.
        stop: where a generated reply ends (e.g. the next question's cue).
    """

    label_prefix: str = " "
    answer_prefix: str = "The answer is "
    max_new_tokens: int = 16
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A backend's answer to one prompt.

    Attributes:
        scores: the log-probability of each label (None: this backend only generated text).
        text: the generated text (None when the labels were scored directly).
        outside_top_k: labels whose log-probability is only an upper bound: the server's
            top-k list at the label's position did not contain it (chat route).
    """

    scores: LabelScores | None
    text: str | None = None
    outside_top_k: tuple[str, ...] = ()

    def readable(self, labels: Sequence[str]) -> bool:
        """Whether the scores tell the answer over ``labels``: there are scores, and not every label
        lies outside the returned top-k (then they are only bounds, and the reply's text decides)."""
        if self.scores is None:
            return False
        return self.text is None or not set(self.outside_top_k) >= set(labels)


class AnswerBackend(ABC):
    """The contract of a backend. Subclasses set :attr:`form`, :attr:`kind` and :attr:`model_name`.

    ``answer`` must keep the order of ``prompts``; ``label_lists`` has one label list per prompt.
    """

    form: PromptForm = "text"
    kind: str = ""
    model_name: str = ""

    @property
    def identity(self) -> dict[str, Any]:
        """What names this backend in results and cache keys (never a secret)."""
        return {"backend": self.kind, "model": self.model_name}

    @property
    def can_score(self) -> bool:
        """Whether :meth:`answer` gives label scores (calibration and MCS need them)."""
        return True

    @abstractmethod
    def answer(
        self, prompts: Sequence[Prompt], label_lists: Sequence[Sequence[str]], how: ReplySettings = ReplySettings()
    ) -> list[Reply]:
        """One reply per prompt: label scores, or generated text to parse (read as ``how`` says)."""

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        """Greedy continuation of each prompt, cut at the first stop string."""

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing
        """Release what the backend holds (connections, thread pools)."""


_LONG_UNSHARED_CHARS = 1500
"""Above this many characters of prompt that the call's prompts do not share (~400 tokens), one
prompt per forward pass beats one row per (prompt, label): the rows would repeat the prompt."""


class LocalBackend(AnswerBackend):
    """A local transformers causal LM: exact label scoring with the prefix-cached scorer.

    Args:
        loaded: the model and tokenizer (:func:`~amplify_agents.models.load_causal_lm`).
        batch_size: (prompt, label) rows per forward pass.
        surface_forms: score labels through their spellings (see :class:`LabelScorer`);
            None: on for chat models (a tokenizer with a chat template), off for base models.
    """

    form: PromptForm = "text"
    kind = "transformers"

    def __init__(self, loaded: LoadedModel, *, batch_size: int = 16, surface_forms: bool | None = None) -> None:
        self.loaded = loaded
        self.model_name = str(loaded.name)
        self.scorer = LabelScorer(loaded, batch_size=batch_size)
        if surface_forms is None:
            surface_forms = bool(getattr(loaded.tokenizer, "chat_template", None))
        self.surface_forms = surface_forms

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model_name, "surface_forms": self.surface_forms}

    def answer(
        self, prompts: Sequence[Prompt], label_lists: Sequence[Sequence[str]], how: ReplySettings = ReplySettings()
    ) -> list[Reply]:
        texts = [_as_text(p) for p in prompts]
        labels = [tuple(x) for x in label_lists]
        kwargs: dict[str, Any] = {"label_prefix": how.label_prefix, "surface_forms": self.surface_forms}
        with model_lock(self.loaded):
            unshared = min(len(t) for t in texts) - len(os.path.commonprefix(texts))
            if len(texts) > 1 and unshared > _LONG_UNSHARED_CHARS:
                # Long prompts that share little (per-query demonstrations): each is its own cached
                # prefix, so its labels cost a few tokens each, instead of one full row per
                # (prompt, label). Short ones (zero-shot) batch better as rows.
                scores = [self.scorer.score([t], [labs], **kwargs)[0] for t, labs in zip(texts, labels, strict=True)]
            else:
                # Shared demonstrations run once (the scorer's KV cache) for every prompt.
                scores = self.scorer.score(texts, labels, **kwargs)
        return [Reply(s) for s in scores]

    def generate(self, prompts: Sequence[Prompt], *, max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        settings = GenerationSettings(max_new_tokens=max_new_tokens, stop=tuple(stop))
        with model_lock(self.loaded):
            return generate_text(self.loaded, [_as_text(p) for p in prompts], settings, batch_size=16)


def _as_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    raise TypeError("This backend takes text prompts; build the prompt in text form (a completion model).")
