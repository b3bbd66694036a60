"""The rationale store: demonstrations on Chroma, by id, by filter, by similarity and MMR.

Example:
    >>> from amplify_agents.stores import RationaleStore  # doctest: +SKIP
    >>> store = RationaleStore.local("snarks-amplify", "./chroma_demo")  # doctest: +SKIP
    >>> store.add(demos)  # doctest: +SKIP
    >>> store.search("Is this sarcastic?", k=4, where={"task": "snarks"})  # doctest: +SKIP
"""

from amplify_agents.stores.chroma import RationaleStore, StoreConnectionError, validate_store_name
from amplify_agents.stores.connection import ServerSettings
from amplify_agents.stores.embeddings import LazyEmbeddings, default_embeddings, embedding_model_name
from amplify_agents.stores.jsonl import read_jsonl, write_jsonl
from amplify_agents.stores.retriever import (
    DemonstrationRetriever,
    demonstration_to_document,
    document_to_demonstration,
)
from amplify_agents.stores.schema import (
    SCHEMA_VERSION,
    InvalidDemonstrationError,
    StoreVersionError,
    UnreadableRecordWarning,
    validate_batch,
)

__all__ = [
    "RationaleStore",
    "DemonstrationRetriever",
    "demonstration_to_document",
    "document_to_demonstration",
    "ServerSettings",
    "SCHEMA_VERSION",
    "default_embeddings",
    "LazyEmbeddings",
    "StoreConnectionError",
    "StoreVersionError",
    "InvalidDemonstrationError",
    "UnreadableRecordWarning",
    "embedding_model_name",
    "validate_batch",
    "validate_store_name",
    "read_jsonl",
    "write_jsonl",
]
