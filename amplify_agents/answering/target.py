"""The model a user runs, as one setting: a local model name or an OpenAI-compatible endpoint.

:class:`Target` is what ``EvalConfig``, ``BuildConfig``-driven commands and the CLI take;
:func:`open_target` turns it (or a loaded model, or a LangChain model object) into a backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amplify_agents.answering.backends import AnswerBackend, LocalBackend
from amplify_agents.answering.cache import CachedBackend, ResponseCache
from amplify_agents.answering.openai_compat import Api, Endpoint, open_endpoint
from amplify_agents.models.loading import LoadedModel

__all__ = ["Target", "open_target"]


@dataclass(frozen=True)
class Target:
    """The model whose answers are predicted, selected by and evaluated.

    Attributes:
        model: a local model (offline name, ``.gguf``, directory or hub id) or, with
            ``base_url``, the model name the endpoint serves.
        base_url: an OpenAI-compatible endpoint (``http://host:port/v1``); None = local.
        api_key_env: the *name* of the variable holding the endpoint's key (never the key).
        api: the endpoint's API: ``"completions"`` (exact label scoring) or ``"chat"``.
        concurrency / timeout / attempts: endpoint call settings.
        device: the local model's device.
    """

    model: str = "gemma-3-270m"
    base_url: str | None = None
    api_key_env: str | None = None
    api: Api = "completions"
    concurrency: int = 4
    timeout: float = 60.0
    attempts: int = 3
    device: str | None = None

    @property
    def hosted(self) -> bool:
        return self.base_url is not None

    @property
    def endpoint(self) -> Endpoint:
        if self.base_url is None:
            raise ValueError("This target is a local model: it has no endpoint.")
        return Endpoint(
            self.base_url,
            self.model,
            api_key_env=self.api_key_env,
            api=self.api,
            timeout=self.timeout,
            concurrency=self.concurrency,
            attempts=self.attempts,
        )

    def describe(self) -> dict[str, Any]:
        """What results record about the target (no key, only the variable's name)."""
        if self.base_url is None:
            return {"backend": "transformers", "model": self.model}
        return {"backend": f"openai-{self.api}", "model": self.model, "endpoint": self.base_url}


def open_target(
    target: Target | LoadedModel | AnswerBackend | Any,
    *,
    cache: ResponseCache | None = None,
    batch_size: int = 16,
) -> AnswerBackend:
    """A backend for whatever names the model: a :class:`Target`, a loaded local model, a LangChain
    model object, or a backend (returned as is). ``cache`` keeps the replies on disk."""
    if isinstance(target, AnswerBackend):
        backend = target
    elif isinstance(target, LoadedModel):
        backend = LocalBackend(target, batch_size=batch_size)
    elif isinstance(target, Target):
        if target.hosted:
            return open_endpoint(target.endpoint, cache=cache)
        from amplify_agents.models import load_causal_lm

        backend = LocalBackend(load_causal_lm(target.model, device=target.device), batch_size=batch_size)
    else:
        from langchain_core.language_models import BaseLanguageModel

        if not isinstance(target, BaseLanguageModel):
            raise TypeError(
                f"Cannot answer with a {type(target).__name__}: pass a Target, a loaded model, a LangChain "
                "model or an AnswerBackend."
            )
        from amplify_agents.answering.langchain_model import LangChainBackend

        backend = LangChainBackend(target)
    return CachedBackend(backend, cache) if cache is not None else backend
