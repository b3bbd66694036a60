"""LangChain chains over AMPLIFY demonstrations: the answer chain, routing, chatbot and RAG.

* :func:`create_amplify_chain`: query → selector → prompt → local or hosted LLM → :class:`AmplifyResult`;
* :mod:`.routing`: the ``"llm"`` configurable switch, retries and local fallback
  (:class:`RouteSettings`);
* :func:`create_amplify_chatbot`: a LangGraph chatbot, per-turn demonstrations, conversations in a
  checkpointer (:func:`sqlite_checkpointer` keeps them across restarts);
* :func:`create_amplify_rag_chain` / :func:`create_plain_rag_chain`: retrieved context with or
  without demonstrations.
"""

from amplify_agents.chains.amplify import (
    PromptStyle,
    create_amplify_chain,
    format_documents,
    local_llm,
    parse_completion,
)
from amplify_agents.chains.chatbot import ChatReply, create_amplify_chatbot, sqlite_checkpointer
from amplify_agents.chains.llms import LabelScoringLLM, LocalGenerationLLM, local_generation_llm, model_lock
from amplify_agents.chains.rag import create_amplify_rag_chain, create_plain_rag_chain
from amplify_agents.chains.result import AmplifyResult
from amplify_agents.chains.routing import HOSTED, LLM_FIELD, LOCAL, RouteSettings, default_retry_exceptions

__all__ = [
    "AmplifyResult",
    "ChatReply",
    "HOSTED",
    "LLM_FIELD",
    "LOCAL",
    "LabelScoringLLM",
    "LocalGenerationLLM",
    "PromptStyle",
    "RouteSettings",
    "create_amplify_chain",
    "create_amplify_chatbot",
    "create_amplify_rag_chain",
    "create_plain_rag_chain",
    "default_retry_exceptions",
    "format_documents",
    "local_generation_llm",
    "local_llm",
    "model_lock",
    "parse_completion",
    "sqlite_checkpointer",
]
