"""A LangChain retriever view of a rationale store: demonstrations as ``Document`` objects.

:meth:`RationaleStore.as_retriever <amplify_agents.stores.RationaleStore.as_retriever>`
returns a :class:`DemonstrationRetriever`, a ``BaseRetriever``, so demonstrations show up as a
retrieval step in LangChain traces (LangSmith and any callback handler) and can be used
wherever LangChain takes a retriever. Each ``Document`` holds one demonstration: its input
is the ``page_content``, and the metadata holds ``answer``, ``rationale``, ``demo_id`` and the
other fields of :class:`~amplify_agents.demonstrations.Demonstration` (plus ``similarity`` for
a similarity search). :func:`document_to_demonstration` reads one back exactly.

``AmplifyExampleSelector`` fetches its candidates through this retriever, so its
selections are traced as retrievals too.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever, LangSmithRetrieverParams
from pydantic import ConfigDict, Field, field_validator

from amplify_agents.demonstrations import Demonstration
from amplify_agents.stores.embeddings import embedding_model_name

if TYPE_CHECKING:
    from amplify_agents.stores.chroma import RationaleStore

__all__ = ["DemonstrationRetriever", "SearchType", "demonstration_to_document", "document_to_demonstration"]

SearchType = Literal["similarity", "mmr"]
_FIELDS = frozenset(f.name for f in fields(Demonstration))


def demonstration_to_document(demo: Demonstration, similarity: float | None = None) -> Document:
    """One demonstration as a ``Document``: the input as text, every other field as metadata.

    The metadata also has ``answer`` (the label, under the name prompts use), ``demo_id``
    and, when given, ``similarity`` (cosine similarity to the query).
    """
    metadata: dict[str, Any] = {key: value for key, value in demo.to_dict().items() if key != "input"}
    metadata["answer"] = demo.label
    if similarity is not None:
        metadata["similarity"] = similarity
    return Document(page_content=demo.input, metadata=metadata, id=demo.demo_id)


def document_to_demonstration(doc: Document) -> Demonstration:
    """The demonstration a :func:`demonstration_to_document` document holds (its id checked).

    Raises:
        ValueError: the document is not one of this retriever's (no ``label``, or a
            ``demo_id`` that does not match its fields).
    """
    values = {key: value for key, value in doc.metadata.items() if key in _FIELDS or key == "demo_id"}
    return Demonstration.from_dict({**values, "input": doc.page_content}, limits=None, where="Document")


class DemonstrationRetriever(BaseRetriever):
    """Retrieve demonstrations from a :class:`~amplify_agents.stores.RationaleStore` as Documents.

    Attributes:
        store: the store searched.
        k: how many demonstrations to return.
        where: a Chroma metadata filter applied to the candidates (also with MMR).
        search_type: ``"similarity"`` (nearest first, with ``similarity`` in the metadata) or
            ``"mmr"`` (maximal marginal relevance among the ``fetch_k`` nearest).
        fetch_k / lambda_mult: MMR's candidates and trade-off.

    Async calls use Chroma's async HTTP client when the store is on a server, and run the
    sync search in LangChain's executor otherwise (see :meth:`RationaleStore.asearch`).

    Example:
        >>> retriever = store.as_retriever(k=4, where={"task": "snarks"})  # doctest: +SKIP
        >>> docs = retriever.invoke("Which statement is sarcastic?")  # doctest: +SKIP
        >>> docs[0].metadata["answer"], docs[0].metadata["rationale"]  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any = Field(exclude=True)  # a RationaleStore (Any: pydantic cannot build a schema for it)
    k: int = 4
    where: dict[str, Any] | None = None
    search_type: SearchType = "similarity"
    fetch_k: int = 20
    lambda_mult: float = 0.5

    @field_validator("k", "fetch_k")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"k and fetch_k must be at least 1, got {value}.")
        return value

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        store: RationaleStore = self.store
        if self.search_type == "mmr":
            demos = store.mmr(query, k=self.k, fetch_k=self.fetch_k, lambda_mult=self.lambda_mult, where=self.where)
            return [demonstration_to_document(d) for d in demos]
        return [demonstration_to_document(d, s) for d, s in store.search(query, k=self.k, where=self.where)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        store: RationaleStore = self.store
        if self.search_type == "mmr":
            demos = await store.ammr(
                query, k=self.k, fetch_k=self.fetch_k, lambda_mult=self.lambda_mult, where=self.where
            )
            return [demonstration_to_document(d) for d in demos]
        pairs = await store.asearch(query, k=self.k, where=self.where)
        return [demonstration_to_document(d, s) for d, s in pairs]

    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        """Trace metadata: the retriever, store and embeddings, as LangChain's vector-store retrievers give."""
        params = super()._get_ls_params(**kwargs)
        params["ls_retriever_name"] = "amplify_demonstrations"
        params["ls_vector_store_provider"] = "Chroma"
        params["ls_embedding_provider"] = embedding_model_name(self.store.embeddings)
        return params
