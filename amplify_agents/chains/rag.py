"""Retrieval-augmented chains: retrieved documents as context, with or without AMPLIFY demos.

:func:`create_amplify_rag_chain` puts, in one prompt, the demonstrations the selector
retrieves for the query (rationale-annotated, as in AMPLIFY) and the documents a LangChain
retriever returns for it; :func:`create_plain_rag_chain` is the same chain without
demonstrations, for side-by-side comparisons. Both return an
:class:`~amplify_agents.chains.AmplifyResult` whose ``context`` holds the documents, and
support everything :func:`~amplify_agents.chains.create_amplify_chain` does (local label
scoring or generation, hosted routing, retries and fallback, the declared input and output
schemas: ``rag.as_tool()``, ``rag | StrOutputParser()``).

Text-form layout::

    <instruction>
    <demo 1: input, rationale, answer> ... <demo k>
    Context:
    [1] <document 1>
    [2] <document 2>
    <input prefix><query><answer cue>
"""

from __future__ import annotations

from typing import Any

from langchain_core.example_selectors import BaseExampleSelector
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable

from amplify_agents.chains.amplify import create_amplify_chain
from amplify_agents.chains.result import AmplifyResult

__all__ = ["create_amplify_rag_chain", "create_plain_rag_chain"]


def create_amplify_rag_chain(
    retriever: BaseRetriever,
    selector: BaseExampleSelector,
    **kwargs: Any,
) -> Runnable[str | dict[str, Any], AmplifyResult]:
    """RAG with AMPLIFY demonstrations: retrieved documents and demonstrations in one prompt.

    Args:
        retriever: any LangChain retriever (e.g. ``vectorstore.as_retriever(search_kwargs={"k": 2})``).
        selector: the demonstrations' selector (e.g. an ``AmplifyExampleSelector``).
        kwargs: everything :func:`~amplify_agents.chains.create_amplify_chain` takes
            (``labels``, ``frame``, ``local``, ``hosted``, ``style`` (its ``context_header`` and
            ``context_formatter`` show the documents), ``routing``, ...).

    Example:
        .. code-block:: python

            rag = create_amplify_rag_chain(docs.as_retriever(), selector, labels=labels,
                                           frame=frame, local=gemma)
            result = rag.invoke("Kyle Tucker hit a home run.")
            result.answer, result.context, result.demonstrations
    """
    return create_amplify_chain(selector, retriever=retriever, **kwargs)


def create_plain_rag_chain(retriever: BaseRetriever, **kwargs: Any) -> Runnable[str | dict[str, Any], AmplifyResult]:
    """The same RAG chain without demonstrations (the baseline to compare against)."""
    if "selector" in kwargs:
        raise TypeError("A plain RAG chain has no selector: use create_amplify_rag_chain for demonstrations.")
    return create_amplify_chain(None, retriever=retriever, **kwargs)
