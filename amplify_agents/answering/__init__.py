"""The one answering path: demonstrations + query + labels → label scores or a parsed answer.

:class:`Answerer` builds every prompt (:func:`~amplify_agents.prompts.build_prompt`), asks a
backend, applies placement and calibration. Backends: :class:`LocalBackend` (transformers),
:class:`CompletionsBackend` / :class:`ChatBackend` (OpenAI-compatible endpoints, see
:class:`Endpoint`), :class:`LangChainBackend` (any LangChain model). :func:`open_target` picks
one from what the user has; :class:`CachedBackend` keeps replies on disk.
"""

from amplify_agents.answering.answerer import Answer, Answerer, AnswerSettings, Placement, parse_completion
from amplify_agents.answering.backends import AnswerBackend, LocalBackend, Prompt, Reply, ReplySettings
from amplify_agents.answering.cache import CachedBackend, ResponseCache
from amplify_agents.answering.langchain_model import LangChainBackend
from amplify_agents.answering.openai_compat import ChatBackend, CompletionsBackend, Endpoint, open_endpoint
from amplify_agents.answering.target import Target, open_target

__all__ = [
    "Answer",
    "AnswerBackend",
    "AnswerSettings",
    "Answerer",
    "CachedBackend",
    "ChatBackend",
    "CompletionsBackend",
    "Endpoint",
    "LangChainBackend",
    "LocalBackend",
    "Placement",
    "Prompt",
    "Reply",
    "ReplySettings",
    "ResponseCache",
    "Target",
    "open_endpoint",
    "open_target",
    "parse_completion",
]
